using System.Text.Json;
using Cllm.Text;
using Xunit;

namespace Cllm.Cli.Tests;

/// <summary>The real `cllm` program, run as a user runs it; --json output must parse as one object.</summary>
public sealed class CliTests : IDisposable
{
    readonly string _folder = Path.Combine(Path.GetTempPath(), "cllm-cli-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
    }

    static (int Code, string Out, string Err) Cllm(params string[] args) => CllmProcess.Run(args);

    [Fact]
    public void TokenizePrintsOneIdsLinePerInputWithTheModelsBosRule()
    {
        BuiltInTokenizers.WriteSentencePiece4k(_folder);
        var tokenizer = TextTokenizer.Load(_folder);
        static int[] Ids(string line)
        {
            using var json = JsonDocument.Parse(line);
            return [.. json.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
        }

        var (code, output, err) = Cllm("tokenize", "--model", _folder, "--text", "Hello world");
        Assert.True(code == 0, err);
        Assert.Equal(tokenizer.Encode("Hello world"), Ids(output.Trim()));
        Assert.Equal(tokenizer.BosId, Ids(output.Trim())[0]);

        var input = Path.Combine(_folder, "texts.jsonl");
        File.WriteAllLines(input, ["{\"text\": \"a</s>b\"}", "{\"text\": \"two\\nlines  and 😀\"}"]);
        (code, output, err) = Cllm("tokenize", "--model", _folder, "--input", input, "--no-special");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(tokenizer.Encode("a</s>b", addSpecial: false), Ids(lines[0]));
        Assert.Equal(tokenizer.Encode("two\nlines  and 😀", addSpecial: false), Ids(lines[1]));
        Assert.Equal("two\nlines  and 😀", tokenizer.Decode(Ids(lines[1])));

        File.WriteAllLines(input, ["{\"text\": \"ok\"}", "{\"txt\": 1}"]);
        (code, _, err) = Cllm("tokenize", "--model", _folder, "--input", input);
        Assert.Equal(1, code);
        Assert.Contains("line 2", err);
        (code, _, err) = Cllm("tokenize", "--model", _folder);
        Assert.Equal(1, code);
        Assert.Contains("--text", err);
    }

    [Fact]
    public void InitGenerateAndBenchRunAndPrintOneJsonObject()
    {
        var (code, _, err) = Cllm("init", "--preset", "tiny", "--out", _folder, "--std", "0.25", "--seed", "3");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(_folder, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(_folder, "tokenizer.model")));

        string[] Generate(string decoder, params string[] more)
        {
            var (c, output, e) = Cllm(["generate", "--model", _folder, "--prompt", "The history of", "--decoder", decoder,
                "--max-tokens", "24", "--json", .. more]);
            Assert.True(c == 0, e);
            using var json = JsonDocument.Parse(output);
            var stats = json.RootElement.GetProperty("stats");
            Assert.Equal(24, stats.GetProperty("generated_tokens").GetInt32());
            return json.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.ToString()).ToArray();
        }
        Assert.Equal(Generate("ar"), Generate("jacobi"));
        Assert.Equal(Generate("ar"), Generate("lookahead", "--ngram", "3", "--ngrams-per-key", "2"));
        // Sampling: the same seed gives the same tokens with every decoder.
        var sampled = Generate("ar", "--temperature", "0.8", "--seed", "5");
        Assert.Equal(sampled, Generate("lookahead", "--temperature", "0.8", "--seed", "5"));
        Assert.NotEqual(sampled, Generate("ar"));

        var (benchCode, benchOut, benchErr) = Cllm("bench", "--model", _folder, "--decoders", "ar,jacobi,lookahead", "--max-tokens", "16",
            "--runs", "1", "--json");
        Assert.True(benchCode == 0, benchErr);
        using var bench = JsonDocument.Parse(benchOut);
        var rows = bench.RootElement.GetProperty("decoders").EnumerateArray().ToArray();
        Assert.Equal(["ar", "jacobi", "lookahead"], rows.Select(r => r.GetProperty("decoder").GetString()));
        Assert.Equal("4/4", rows[1].GetProperty("same_tokens_as_ar").GetString());
        Assert.Equal("4/4", rows[2].GetProperty("same_tokens_as_ar").GetString());
        Assert.Equal(1.0, rows[0].GetProperty("speed_ratio_to_ar").GetDouble());

        // Sampling: with the same seed every decoder draws AR's tokens, and bench checks it.
        (benchCode, benchOut, benchErr) = Cllm("bench", "--model", _folder, "--decoders", "ar,lookahead", "--max-tokens", "16",
            "--runs", "1", "--temperature", "0.8", "--json");
        Assert.True(benchCode == 0, benchErr);
        using var sampledBench = JsonDocument.Parse(benchOut);
        Assert.Equal("4/4", sampledBench.RootElement.GetProperty("decoders")[1].GetProperty("same_tokens_as_ar").GetString());

        // The pass profile splits each pass's time by operation: the parts are non-negative and add up to the pass.
        (benchCode, benchOut, benchErr) = Cllm("bench", "--model", _folder, "--pass-cost", "--profile", "--context", "32", "--block", "8",
            "--runs", "30", "--json");
        Assert.True(benchCode == 0, benchErr);
        using var passCost = JsonDocument.Parse(benchOut);
        foreach (var passRows in new[] { 1, 8 })
        {
            string[] parts = ["linear", "attention", "norm", "rope", "swiglu"];
            var ms = parts.Select(p => passCost.RootElement.GetProperty($"profile_{passRows}_tokens_{p}_ms").GetDouble()).ToArray();
            Assert.All(ms, m => Assert.True(m >= 0));
            Assert.True(ms[0] > 0, "the linear products take time");
            Assert.True(passCost.RootElement.GetProperty($"profile_{passRows}_tokens_linear_gmacs_per_second").GetDouble() > 0);
        }

        // The text form names every field of the JSON form (the block-sized ones too), the rows as a table.
        void TextNamesTheJsonFields(JsonDocument json, string tableKey, params string[] args)
        {
            var (c, text, e) = Cllm(["bench", "--model", _folder, .. args]);
            Assert.True(c == 0, e);
            var keys = text.Split('\n').Where(l => l.Contains(": ")).Select(l => l[..l.IndexOf(": ", StringComparison.Ordinal)]);
            Assert.Equal(json.RootElement.EnumerateObject().Select(p => p.Name).Where(k => k != tableKey).Order(), keys.Order());
        }
        TextNamesTheJsonFields(passCost, "", "--pass-cost", "--profile", "--context", "32", "--block", "8", "--runs", "30");
        TextNamesTheJsonFields(bench, "decoders", "--decoders", "ar,jacobi,lookahead", "--max-tokens", "16", "--runs", "1");

        // --timings splits the time to the first token into the loading steps, in order.
        var (timedCode, _, timedErr) = Cllm("generate", "--model", _folder, "--prompt", "Hi", "--max-tokens", "1", "--timings");
        Assert.True(timedCode == 0, timedErr);
        string[] phases = ["runtime start", "TorchSharp natives", "tokenizer", "config and weights", "engine", "first token"];
        var at = phases.Select(p => timedErr.IndexOf("  " + p, StringComparison.Ordinal)).ToArray();
        Assert.All(at, i => Assert.True(i >= 0, timedErr));
        Assert.Equal(at.Order(), at);
    }

    [Fact]
    public void DataWritesTheEvaluationSplitsAndEvalReportsEachOne()
    {
        var data = Path.Combine(_folder, "data");
        var (code, _, err) = Cllm("data", "--out", data, "--train", "40", "--held-out", "3", "--language", "rich");
        Assert.True(code == 0, err);
        foreach (var split in new[] { "test", "heldout-values", "heldout-phrasings", "heldout" })
            Assert.Equal(3, File.ReadLines(Path.Combine(data, split + "-prompts.jsonl")).Count());
        Assert.Equal(40, File.ReadLines(Path.Combine(data, "train-prompts.jsonl")).Count());

        var model = Path.Combine(_folder, "model");
        (code, _, err) = Cllm("init", "--preset", "tiny", "--out", model, "--seed", "3");
        Assert.True(code == 0, err);
        (code, var output, err) = Cllm("eval", "--model", model, "--data", data, "--limit", "2", "--max-tokens", "6", "--decoders", "ar,jacobi", "--json");
        Assert.True(code == 0, err);
        using var json = JsonDocument.Parse(output);
        var splits = json.RootElement.GetProperty("splits").EnumerateArray().ToArray();
        Assert.Equal(["test", "heldout-values", "heldout-phrasings"], splits.Select(s => s.GetProperty("split").GetString()));
        foreach (var split in splits)
        {
            Assert.Equal(2, split.GetProperty("prompts").GetInt32());
            var rows = split.GetProperty("decoders").EnumerateArray().ToArray();
            Assert.Equal(["ar", "jacobi"], rows.Select(r => r.GetProperty("decoder").GetString()));
            Assert.Equal(100, rows[1].GetProperty("same_as_ar_percent").GetDouble());
            Assert.Equal(12, rows[0].GetProperty("tokens").GetInt32());
            Assert.True(rows[1].GetProperty("fast_forwarded_tokens").GetInt32() >= 0 && rows[1].GetProperty("stationary_tokens").GetInt32() >= 0);
        }

        // One split by name; bad choices name the option and the fix.
        (code, output, err) = Cllm("eval", "--model", model, "--data", data, "--split", "heldout", "--limit", "1", "--max-tokens", "4", "--json");
        Assert.True(code == 0, err);
        using (var one = JsonDocument.Parse(output))
            Assert.Equal("heldout", one.RootElement.GetProperty("splits")[0].GetProperty("split").GetString());
        (code, _, err) = Cllm("eval", "--model", model, "--data", data, "--split", "dev");
        Assert.Equal(1, code);
        Assert.Contains("--split 'dev'", err);
        (code, _, err) = Cllm("eval", "--model", model);
        Assert.Equal(1, code);
        Assert.Contains("--prompts", err);
    }

    [Fact]
    public void BadInputIsOneLineOnStderrAndExitCodeOne()
    {
        var (code, _, err) = Cllm("generate", "--model", Path.Combine(_folder, "missing"), "--prompt", "hi");
        Assert.Equal(1, code);
        Assert.StartsWith("cllm: ", err);
        Assert.Contains("missing", err);
        (code, _, err) = Cllm("init", "--preset", "huge", "--out", _folder);
        Assert.Equal(1, code);
        Assert.Contains("Unknown preset 'huge'", err);
    }
}
