using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Text;
using static TorchSharp.torch;

namespace Cllm.Extensions.AI.Tests;

/// <summary>
/// A real model folder (weights + the built-in SentencePiece tokenizer) whose weights are set by hand so that its
/// greedy output is a chosen text: every attention and feed-forward weight is zero (each block adds nothing to
/// the residual), each token of the script has its own embedding axis, and the output head maps token i's axis
/// to token i + 1, and the last token to the end-of-sequence token. Any other token (the end of any prompt) leads
/// to the script's first token. The script's tokens must be distinct, since the next token depends on the
/// current one only.
/// </summary>
sealed class ScriptedModel : IDisposable
{
    public ScriptedModel(string script)
    {
        Directory = Path.Combine(Path.GetTempPath(), "cllm-scripted-" + Guid.NewGuid().ToString("N"));
        BuiltInTokenizers.WriteSentencePiece4k(Directory);
        var tokenizer = TextTokenizer.Load(Directory);
        Tokens = tokenizer.Encode(script, addSpecial: false);
        var config = ModelConfig.Preset("tiny");
        if (Tokens.Distinct().Count() != Tokens.Length)
            throw new ArgumentException($"The script's tokens repeat: [{string.Join(",", Tokens)}]", nameof(script));
        if (Tokens.Length >= config.HiddenSize)
            throw new ArgumentException($"{Tokens.Length} tokens; at most {config.HiddenSize - 1} fit.", nameof(script));

        using var model = new Transformer(config);
        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters())
                p.copy_(name.EndsWith("norm.weight", StringComparison.Ordinal) ? ones_like(p) : zeros_like(p));
            var parameters = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            var embeddings = parameters["tok_embeddings.weight"];
            var head = parameters["output.weight"];
            // Axis 0: every token outside the script, followed by the script's first token.
            embeddings[.., 0] = 1;
            head[Tokens[0], 0] = 10;
            for (var i = 0; i < Tokens.Length; i++)
            {
                embeddings[Tokens[i], 0] = 0;
                embeddings[Tokens[i], i + 1] = 1;
                head[i + 1 < Tokens.Length ? Tokens[i + 1] : config.EosTokenIds[0], i + 1] = 10;
            }
        }
        ModelFiles.Save(model, Directory);
    }

    public string Directory { get; }

    /// <summary>The script's token ids, in order: the model's greedy answer to any prompt.</summary>
    public int[] Tokens { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
