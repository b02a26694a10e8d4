using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cllm.Text;

/// <summary>
/// Tokenizers shipped inside Cllm.Runtime, for models that have none of their own (e.g. the
/// random-initialised models of <c>cllm init</c>).
/// </summary>
public static class BuiltInTokenizers
{
    /// <summary>The file name the 4k SentencePiece model gets in a model folder.</summary>
    public const string SentencePiece4kFileName = "tokenizer.model";

    // LogicalName set in Cllm.Runtime.csproj; made by scripts/make-tokenizer-fixture.sh.
    private const string SentencePiece4kResource = "cllm-sp4k.model";

    /// <summary>
    /// A 4096-piece SentencePiece BPE model with byte fallback (LLaMA-style: unk 0, bos 1, eos 2,
    /// identity normalization, digits split), trained on English text.
    /// </summary>
    public static Stream OpenSentencePiece4k() =>
        typeof(BuiltInTokenizers).Assembly.GetManifestResourceStream(SentencePiece4kResource)
        ?? throw new InvalidOperationException($"Embedded resource '{SentencePiece4kResource}' is missing from Cllm.Runtime.");

    /// <summary>Writes tokenizer.model and a matching tokenizer_config.json into a model folder (created if needed).</summary>
    public static void WriteSentencePiece4k(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        Directory.CreateDirectory(modelDirectory);
        using (var source = OpenSentencePiece4k())
        using (var target = File.Create(Path.Combine(modelDirectory, SentencePiece4kFileName)))
        {
            source.CopyTo(target);
        }

        // The same shape Hugging Face writes for LLaMA-2, so other tools read the folder too.
        static JsonObject Added(string content) => new()
        {
            ["content"] = content, ["lstrip"] = false, ["normalized"] = false,
            ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
        };
        var config = new JsonObject
        {
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            // Cllm's own models are trained with no "▁" put in front of text that follows a special token.
            ["legacy"] = false,
            ["added_tokens_decoder"] = new JsonObject { ["0"] = Added("<unk>"), ["1"] = Added("<s>"), ["2"] = Added("</s>") },
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["pad_token"] = null,
            ["tokenizer_class"] = "LlamaTokenizer",
        };
        string json = config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        File.WriteAllText(Path.Combine(modelDirectory, "tokenizer_config.json"), json, new UTF8Encoding(false));
    }
}
