using System.Diagnostics;
using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Text;
using Cllm.Training.Data;

namespace Cllm.Oracle.Tests;

/// <summary>
/// The trained default model (models/cllm-tiny, and its base models/cllm-tiny-base): greedy answers to every
/// held-out prompt (`cllm data`'s heldout-prompts.jsonl, generated here) are the same tokens in llama.cpp.
/// The prompts are chat-formatted, so both sides get our token ids (llama.cpp re-inserts a "▁" after control
/// tokens when it tokenizes such text itself; see TokenizerAgreementTests).
/// </summary>
public sealed class DefaultModelTests(ITestOutputHelper output) : IDisposable
{
    const int MaxNewTokens = 160;

    readonly string _root = Directory.CreateTempSubdirectory("cllm-oracle-default-").FullName;

    /// <summary>Every third held-out prompt for the CLLM model, every sixth for its base: about 50 s in CI, where the test
    /// runs (it used to need an ignored artifacts/ folder and passed without checking when that was absent).</summary>
    [Theory]
    [InlineData("cllm-tiny", 3)]
    [InlineData("cllm-tiny-base", 6)]
    public void GreedyAnswersToHeldOutPromptsEqualLlamaCpp(string name, int every)
    {
        var repo = OracleModels.RepositoryRoot();
        // CLLM_ORACLE_MODELS points at another folder of trained models (e.g. a training run's output).
        var models = Environment.GetEnvironmentVariable("CLLM_ORACLE_MODELS") ?? (repo is null ? null : Path.Combine(repo, "models"));
        var dir = models is null ? null : Path.Combine(models, name);
        Prerequisite.Require(dir is not null && File.Exists(Path.Combine(dir, ModelFiles.ConfigFile)),
            $"the trained model models/{name} is not there (made by scripts/make-default-model.sh)");

        // The held-out prompts exactly as `cllm data` writes them with its defaults (seed 1: held-out seed 2, 300 prompts).
        var promptsPath = Path.Combine(_root, "heldout-prompts.jsonl");
        CorpusWriter.WritePrompts(promptsPath, new TaskGenerator(2).Generate(300, Split.HeldOut));

        Cllm.Native.TorchNative.EnsureLoaded();
        TorchSharp.torch.set_num_threads(1);
        var prompts = File.ReadLines(promptsPath).Where(l => l.Trim().Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()!).Where((_, i) => i % every == 0).ToArray();
        Assert.True(prompts.Length >= 300 / every, $"{prompts.Length} held-out prompts");
        var tokenizer = TextTokenizer.Load(dir);
        using var model = ModelFiles.Load(dir);
        var gguf = Path.Combine(_root, name + ".gguf");
        GgufExport.ExportFolder(dir, gguf);
        var eos = model.Config.EosTokenIds.Count > 0 ? model.Config.EosTokenIds : tokenizer.EosIds;
        using var llama = new LlamaCppRunner(gguf, contextSize: Math.Min(model.MaxPositions, 1024));

        var mismatches = new List<string>();
        int tokens = 0, stopped = 0;
        var clock = Stopwatch.StartNew();
        foreach (var (prompt, index) in prompts.Select((p, i) => (p, i)))
        {
            var ids = tokenizer.Encode(prompt);
            var ours = GreedyAgreementTests.OurGreedy(model, ids, MaxNewTokens, eos.ToArray());
            var theirs = llama.Greedy(ids, MaxNewTokens, eos.ToArray());
            tokens += ours.Length;
            if (ours.Length > 0 && eos.Contains(ours[^1])) stopped++;
            if (!ours.SequenceEqual(theirs))
                mismatches.Add($"prompt {index}: first difference at token {GreedyAgreementTests.FirstDifference(ours, theirs)}: " +
                               $"ours \"{tokenizer.Decode(ours)}\" vs llama.cpp \"{tokenizer.Decode(theirs)}\"");
        }
        output.WriteLine($"{name}: {prompts.Length} held-out prompts, {tokens} generated tokens ({stopped} answers ended at EOS), " +
                         $"{mismatches.Count} differences, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches.Take(5)));
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
