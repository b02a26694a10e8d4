using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Text;

[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

namespace Cllm.Extensions.AI.Tests;

/// <summary>
/// The models tests run on: a random-initialised one (real tokenizer, noise text) for the client's
/// mechanics, and the repository's trained default model for what needs a model that follows the chat
/// format (tool calls, multi-token Jacobi passes).
/// </summary>
static class TestModels
{
    static readonly Lazy<string> s_random = new(MakeRandom);

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>
    /// models/cllm-tiny-base, the autoregressively trained base of the default model.
    /// </summary>
    public static string Base => Existing("cllm-tiny-base")
        ?? throw new InvalidOperationException($"No {Path.Combine(RepoRoot, "models", "cllm-tiny-base")}; make it with scripts/make-default-model.sh.");

    /// <summary>models/cllm-tiny, the CLLM (several tokens per Jacobi pass), else its base.</summary>
    public static string Cllm => Existing("cllm-tiny") ?? Base;

    static string? Existing(string name) =>
        Path.Combine(RepoRoot, "models", name) is var dir && File.Exists(Path.Combine(dir, "config.json")) ? dir : null;

    /// <summary>A random 'tiny' model with the built-in 4k SentencePiece tokenizer, made once per machine.</summary>
    public static string Random => s_random.Value;

    static string MakeRandom()
    {
        // v2: random norm weights (a folder made by an older InitializeRandom is not reused).
        var dir = Path.Combine(Path.GetTempPath(), "cllm-extensions-ai-tests-random-v2");
        if (!File.Exists(Path.Combine(dir, "config.json")))
        {
            var staging = dir + "-" + Guid.NewGuid().ToString("N");
            using (var model = new Transformer(ModelConfig.Preset("tiny") with { VocabSize = 4096 }))
            {
                model.InitializeRandom(seed: 7, 0.25);
                ModelFiles.Save(model, staging);
            }

            BuiltInTokenizers.WriteSentencePiece4k(staging);
            try
            {
                Directory.Move(staging, dir);
            }
            catch (IOException) when (File.Exists(Path.Combine(dir, "config.json")))
            {
                Directory.Delete(staging, recursive: true); // another test run made it first
            }
        }

        return dir;
    }

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cllm.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("Cllm.sln not found above " + AppContext.BaseDirectory);
    }
}
