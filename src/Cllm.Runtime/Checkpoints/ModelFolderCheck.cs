using Cllm.Model;
using Cllm.Text;

namespace Cllm.Checkpoints;

/// <summary>Checks across a model folder's files that each file alone cannot make.</summary>
internal static class ModelFolderCheck
{
    /// <summary>Every id the tokenizer can produce must have an embedding row.</summary>
    public static void TokenizerFitsModel(TextTokenizer tokenizer, ModelConfig config, string folder)
    {
        if (tokenizer.VocabularySize <= config.VocabSize) return;
        int highest = tokenizer.VocabularySize - 1;
        throw new InvalidDataException(
            $"{folder}: the tokenizer has token ids up to {highest} ('{tokenizer.IdToToken(highest)}', from tokenizer.json added_tokens " +
            $"or tokenizer_config.json added_tokens_decoder), but config.json's vocab_size is {config.VocabSize}. " +
            "Fix the added token's id, or use the tokenizer files that came with these weights.");
    }
}
