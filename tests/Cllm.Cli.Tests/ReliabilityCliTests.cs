using System.Text.Json.Nodes;
using Xunit;

namespace Cllm.Cli.Tests;

/// <summary>The real `cllm` on damaged inputs: a clear one-line error, or a correct resume.</summary>
public sealed class ReliabilityCliTests : IDisposable
{
    readonly string _folder = Path.Combine(Path.GetTempPath(), "cllm-cli-reliability-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
    }

    static (int Code, string Out, string Err) Cllm(params string[] args) => CllmProcess.Run(args);

    string Model()
    {
        var model = Path.Combine(_folder, "model");
        var (code, _, err) = Cllm("init", "--preset", "tiny", "--out", model, "--std", "0.25", "--seed", "3");
        Assert.True(code == 0, err);
        return model;
    }

    [Fact]
    public void OutOfRangeIdsInGenerationConfigAreAOneLineError()
    {
        var model = Model();
        foreach (var (patch, value) in new[] { ("{\"eos_token_id\": 999999}", "999999"), ("{\"bos_token_id\": -4}", "-4"), ("{\"eos_token_id\": 2.5}", "2.5") })
        {
            File.WriteAllText(Path.Combine(model, "generation_config.json"), patch);
            var (code, _, err) = Cllm("generate", "--model", model, "--prompt", "hi", "--max-tokens", "4");
            Assert.Equal(1, code);
            Assert.StartsWith("cllm: ", err);
            Assert.Contains("generation_config.json", err);
            Assert.Contains(value, err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
    }

    [Fact]
    public void CollectKilledMidGroupResumesToTheUninterruptedFile()
    {
        var model = Model();
        var data = Path.Combine(_folder, "data");
        var (code, _, err) = Cllm("data", "--out", data, "--train", "20", "--held-out", "4");
        Assert.True(code == 0, err);
        string Collect(string output) =>
            Cllm("collect", "--model", model, "--prompts", Path.Combine(data, "heldout-prompts.jsonl"), "--out", output,
                "--block", "4", "--max-tokens", "12", "--limit", "3") is var (c, o, e) && c == 0 ? e : throw new Xunit.Sdk.XunitException(e);
        var straight = Path.Combine(_folder, "straight.jsonl");
        Collect(straight);
        var full = File.ReadAllBytes(straight);

        // A kill in the middle of the last group: its head is on disk, its group_end is not. (The text is ASCII.)
        var text = File.ReadAllText(straight);
        var groupEnds = new List<int>();
        for (int at = text.IndexOf("{\"group_end\"", StringComparison.Ordinal); at >= 0; at = text.IndexOf("{\"group_end\"", at + 1, StringComparison.Ordinal))
            groupEnds.Add(text.IndexOf('\n', at) + 1);
        Assert.Equal(3, groupEnds.Count);
        int lastGroupStart = groupEnds[^2];
        var resumed = Path.Combine(_folder, "resumed.jsonl");
        File.WriteAllBytes(resumed, full[..(lastGroupStart + (full.Length - lastGroupStart) / 2)]);
        var log = Collect(resumed);
        Assert.Contains("dropped an unfinished group", log);
        Assert.Contains("1 prompts to collect (2 already in", log);
        Assert.Equal(full, File.ReadAllBytes(resumed));
    }

    [Fact]
    public void ResumingTrainingWithOtherSettingsIsAOneLineError()
    {
        var model = Model();
        var data = Path.Combine(_folder, "data");
        Assert.Equal(0, Cllm("data", "--out", data, "--train", "20", "--held-out", "2").Code);
        string[] Train(params string[] more) =>
            ["train", "--objective", "ar", "--data", Path.Combine(data, "train.jsonl"), "--preset", "tiny", "--tokenizer", model,
             "--out", Path.Combine(_folder, "trained"), "--steps", "3", "--checkpoint-every", "2", "--max-length", "64", .. more];
        var (code, _, err) = Cllm(Train("--batch", "2"));
        Assert.True(code == 0, err);
        foreach (var (option, saved, asked) in new[] { ("--batch", "batch 2", "batch 4"), ("--lr", "lr 0.001", "lr 0.002"), ("--seed", "seed 1", "seed 9") })
        {
            var value = asked.Split(' ')[1];
            (code, _, err) = Cllm(Train(option == "--batch" ? ["--batch", value] : ["--batch", "2", option, value]));
            Assert.Equal(1, code);
            var message = Assert.Single(err.Split('\n'), l => l.StartsWith("cllm: ", StringComparison.Ordinal)); // after the data summary
            Assert.Contains($"written by a run with {saved}", message);
            Assert.Contains($"this run asks for {asked}", message);
        }
    }
}
