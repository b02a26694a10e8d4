using System.Diagnostics;
using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Text;

namespace Cllm.Cli.Bench;

/// <summary>
/// <c>cllm bench --vs-llamacpp</c>: llama.cpp AR, Cllm AR and Cllm Jacobi on the same weights (the model exported to a
/// temporary GGUF, F32 for a float32 engine), the same prompt token ids and the same thread count. Speeds are medians
/// over runs in one process, the engines interleaved prompt by prompt; llama.cpp runs with the oracle settings
/// (F32 KV cache, flash attention off), so its greedy tokens are the engine's and every engine generates the same text.
/// Peak RSS comes from one child process per engine (this command re-run with <c>--probe</c>), since one process
/// holding all three could not tell their memory apart.
/// </summary>
sealed class SideBySide(BenchSettings settings)
{
    public const string LlamaCppName = "llama.cpp AR", ArName = "Cllm AR", JacobiName = "Cllm Jacobi";

    string ModelDirectory => settings.ModelDirectory;
    int MaxTokens => settings.MaxTokens;
    int Threads => settings.Threads ?? Math.Max(1, Environment.ProcessorCount);

    GenerationOptions Options(DecoderKind kind, IReadOnlyCollection<int> stops) => new()
    {
        Decoder = kind, MaxNewTokens = MaxTokens, BlockSize = settings.Block,
        InitialGuess = settings.GuessPolicy, StopTokenIds = stops, Seed = 1,
    };

    int[][] Prompts(TextTokenizer tokenizer) =>
        BenchPrompts.Read(settings.PromptsPath, settings.PromptCount).Select(t => tokenizer.Encode(t)).ToArray();

    CllmEngine LoadEngine() => CllmEngine.Load(ModelDirectory, new EngineOptions { DType = settings.ModelDType, Threads = Threads });

    public SideBySideResult Run()
    {
        var runs = settings.Runs;
        if (runs < 1) throw new ArgumentException("--runs must be at least 1.");
        var total = Stopwatch.StartNew();
        using var engine = LoadEngine();
        var prompts = Prompts(engine.Tokenizer);
        var stops = engine.EosIds.ToArray();
        // The same weights llama.cpp-side: F32 for float32, BF16 bits for bfloat16, F16 for float16.
        var ggufType = settings.ModelDType switch { ModelDType.BFloat16 => GgufDType.BF16, ModelDType.Float16 => GgufDType.F16, _ => GgufDType.F32 };
        var gguf = Path.Combine(Path.GetTempPath(), $"cllm-bench-{Environment.ProcessId}.gguf");
        try
        {
            GgufExport.Export(engine.Model, GgufVocabulary.FromModelFolder(ModelDirectory, engine.Tokenizer), gguf, ggufType);
            using var llama = new LlamaCppRunner(gguf, ContextFor(engine, prompts), Threads);

            // Warm-up, and the outputs to compare.
            var llamaTokens = prompts.Select(p => llama.Greedy(p, MaxTokens, stops)).ToArray();
            var arTokens = prompts.Select(p => engine.Generate(p, Options(DecoderKind.Autoregressive, stops)).SelectMany(c => c.Tokens).ToArray()).ToArray();
            var jacobiTokens = prompts.Select(p => engine.Generate(p, Options(DecoderKind.Jacobi, stops)).SelectMany(c => c.Tokens).ToArray()).ToArray();

            var names = new[] { LlamaCppName, ArName, JacobiName };
            // Per request: wall time, tokens, forward passes, and the time after the first token (prefill makes it).
            var timings = names.ToDictionary(n => n, _ => new List<(double Seconds, int Tokens, int Passes, double DecodeSeconds)>());
            for (var run = 0; run < runs; run++)
                foreach (var prompt in prompts)
                {
                    var clock = Stopwatch.StartNew();
                    var generated = llama.Greedy(prompt, MaxTokens, stops, out var prefill);
                    var seconds = clock.Elapsed.TotalSeconds;
                    timings[LlamaCppName].Add((seconds, generated.Length, generated.Length, seconds - prefill));
                    foreach (var (name, kind) in new[] { (ArName, DecoderKind.Autoregressive), (JacobiName, DecoderKind.Jacobi) })
                    {
                        var stats = new DecodingStats();
                        clock.Restart();
                        foreach (var _ in engine.Generate(prompt, Options(kind, stops), stats)) { }
                        seconds = clock.Elapsed.TotalSeconds;
                        timings[name].Add((seconds, stats.GeneratedTokens, stats.ForwardPasses, seconds - stats.PrefillTime.TotalSeconds));
                    }
                }

            IEnumerable<(double Seconds, int Tokens, int Passes, double DecodeSeconds)> Slice(string name, int run) =>
                timings[name].Skip(run * prompts.Length).Take(prompts.Length);
            double Speed(string name, int run) => Slice(name, run).Sum(x => x.Tokens) / Slice(name, run).Sum(x => x.Seconds);
            double DecodeSpeed(string name, int run) =>
                Slice(name, run).Sum(x => x.Tokens - 1) / Slice(name, run).Sum(x => x.DecodeSeconds);
            var rss = new Dictionary<string, double?>
            {
                [LlamaCppName] = ProbeRss("llamacpp", gguf), [ArName] = ProbeRss("ar", null), [JacobiName] = ProbeRss("jacobi", null),
            };
            var baselineRss = ProbeRss("none", null);
            var outputs = new Dictionary<string, int[][]> { [LlamaCppName] = llamaTokens, [ArName] = arTokens, [JacobiName] = jacobiTokens };
            var rows = names.Select(name =>
            {
                var runIndexes = Enumerable.Range(0, runs).ToArray();
                var speeds = runIndexes.Select(r => Speed(name, r)).ToArray();
                var ratios = runIndexes.Select(r => Speed(name, r) / Speed(LlamaCppName, r)).ToArray();
                var decodeSpeeds = runIndexes.Select(r => DecodeSpeed(name, r)).ToArray();
                var decodeRatios = runIndexes.Select(r => DecodeSpeed(name, r) / DecodeSpeed(LlamaCppName, r)).ToArray();
                var all = timings[name];
                return new EngineRow
                {
                    Engine = name,
                    TokensPerSecond = Math.Round(Report.Median(speeds), 2),
                    SpeedRatio = Math.Round(Report.Median(ratios), 3),
                    DecodeTokensPerSecond = Math.Round(Report.Median(decodeSpeeds), 2),
                    DecodeSpeedRatio = Math.Round(Report.Median(decodeRatios), 3),
                    MsPerToken = Math.Round(1000 / Report.Median(decodeSpeeds), 3),
                    MsPerTokenRatio = Math.Round(1 / Report.Median(decodeRatios), 3),
                    PrefillMs = Math.Round(Report.Median(all.Select(x => (x.Seconds - x.DecodeSeconds) * 1000)), 2),
                    TokensPerPass = Math.Round((double)all.Sum(x => x.Tokens) / all.Sum(x => x.Passes), 3),
                    PeakRssMiB = rss[name],
                    RssRatio = rss[name] is { } r && rss[LlamaCppName] is { } l ? Math.Round(r / l, 3) : null,
                    SameTokensAsLlamaCpp = outputs[name].Zip(llamaTokens).Count(x => x.First.SequenceEqual(x.Second)) + "/" + prompts.Length,
                };
            }).ToArray();
            return new SideBySideResult
            {
                Model = ModelDirectory,
                ParametersMillions = Math.Round(engine.Config.ParameterCount / 1e6, 1),
                DType = engine.Options.DType.ToString().ToLowerInvariant(),
                GgufType = ggufType.ToString().ToLowerInvariant(),
                Threads = Threads,
                Prompts = prompts.Length,
                MeanPromptTokens = Math.Round(prompts.Average(p => p.Length), 1),
                MeanGeneratedTokens = Math.Round(arTokens.Average(t => t.Length), 1),
                MaxNewTokens = MaxTokens,
                StopIds = stops,
                Block = settings.Block,
                Guess = settings.Guess,
                Runs = runs,
                LlamaCppSettings = "LLamaSharp 0.30.0 CPU backend, F32 KV cache, flash attention off, greedy sampler",
                BaselineRssMiB = baselineRss,
                Engines = rows,
                Machine = $"{Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
                Seconds = Math.Round(total.Elapsed.TotalSeconds, 1),
            };
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    int ContextFor(CllmEngine engine, int[][] prompts) =>
        Math.Min(engine.ContextLength, Math.Max(64, prompts.Max(p => p.Length) + MaxTokens + (settings.Block ?? BlockSizer.MaxBlockSize) + 8));

    /// <summary>Runs this command again in a child process that loads one engine only and reports its peak RSS.</summary>
    double? ProbeRss(string engineName, string? gguf)
    {
        var args = new List<string> { "bench", "--model", ModelDirectory, "--probe", engineName, "--max-tokens", MaxTokens.ToString(),
            "--guess", settings.Guess, "--dtype", settings.DType,
            "--threads", Threads.ToString() };
        if (settings.Block is { } block) args.AddRange(["--block", block.ToString()]);
        if (settings.PromptsPath is { } p) args.AddRange(["--prompts", Path.GetFullPath(p)]);
        if (settings.PromptCount is { } n) args.AddRange(["--prompt-count", n.ToString()]);
        if (gguf is not null) args.AddRange(["--gguf", gguf]);
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var self = Environment.ProcessPath!;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(SideBySide).Assembly.Location);
        start.FileName = self;
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.Error.WriteLine($"cllm: the {engineName} memory probe failed: {stderr.Result.Trim()}");
            return null;
        }
        return JsonSerializer.Deserialize<RssProbeResult>(stdout.Result.Trim().Split('\n')[^1], BenchJson.OneLine)?.PeakRssMiB;
    }

    /// <summary>In a child process: load one engine, generate for every prompt twice, report the process's peak RSS.</summary>
    public RssProbeResult Probe(string engineName)
    {
        var tokenizer = TextTokenizer.Load(ModelDirectory);
        var prompts = Prompts(tokenizer);
        switch (engineName)
        {
            case "none":
                break;
            case "llamacpp":
            {
                var gguf = settings.Gguf ?? throw new ArgumentException("--probe llamacpp needs --gguf.");
                var config = ModelConfig.Load(Path.Combine(ModelDirectory, ModelFiles.ConfigFile));
                var stops = config.EosTokenIds.Count > 0 ? config.EosTokenIds.ToArray() : tokenizer.EosIds.ToArray();
                var context = Math.Max(64, prompts.Max(p => p.Length) + MaxTokens + (settings.Block ?? BlockSizer.MaxBlockSize) + 8);
                using var llama = new LlamaCppRunner(gguf, Math.Min(context, config.MaxPositions), Threads);
                for (var i = 0; i < 2; i++)
                    foreach (var p in prompts) llama.Greedy(p, MaxTokens, stops);
                break;
            }
            case "ar" or "jacobi":
            {
                using var engine = LoadEngine();
                var kind = engineName == "ar" ? DecoderKind.Autoregressive : DecoderKind.Jacobi;
                for (var i = 0; i < 2; i++)
                    foreach (var p in prompts)
                        foreach (var _ in engine.Generate(p, Options(kind, engine.EosIds.ToArray()))) { }
                break;
            }
            default:
                throw new ArgumentException($"Unknown --probe '{engineName}'; use llamacpp, ar, jacobi or none.");
        }
        return new RssProbeResult(engineName, Report.PeakRssMiB());
    }
}
