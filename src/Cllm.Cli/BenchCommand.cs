using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Cllm.Checkpoints;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LLama.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm bench</c>: decoders side by side on the same prompts in one process, interleaved run by run so
/// that machine noise hits them alike; every speed is also given as a ratio to AR measured in the same run.
/// <c>--pass-cost</c> instead times one forward pass of n tokens against one of 1 token at a given context.
/// <c>--vs-llamacpp</c> puts llama.cpp (LLamaSharp's CPU backend) beside Cllm AR and Cllm Jacobi on the same weights
/// (exported to GGUF), prompts and thread count; <c>cllm bench plot</c> charts saved results.
/// </summary>
static class BenchCommand
{
    static readonly string[] DefaultPrompts =
    [
        "The history of the printing press begins",
        "Write a function that returns the sum of a list of numbers.",
        "Question: A farmer has 12 apples and gives away 5. How many are left?\nAnswer:",
        "SELECT name FROM customers WHERE",
    ];

    public static Command Create()
    {
        var model = CliOptions.Model();
        var decoders = new Option<string>("--decoders") { Description = "Comma-separated: ar, jacobi, lookahead.", DefaultValueFactory = _ => "ar,jacobi" };
        var prompts = new Option<string?>("--prompts")
        {
            Description = "File with one prompt per line, or JSONL with a \"prompt\" field (default: four built-in prompts).",
        };
        var promptCount = new Option<int?>("--prompt-count") { Description = "Use this many prompts, evenly spread over the file." };
        var vsLlamaCpp = new Option<bool>("--vs-llamacpp")
        {
            Description = "Compare with llama.cpp AR on the same weights (GGUF export), prompts and threads: tokens/s, ms per token, peak RSS.",
        };
        var probe = new Option<string?>("--probe") { Hidden = true, Description = "Internal: measure one engine's peak RSS in its own process." };
        var gguf = new Option<string?>("--gguf") { Hidden = true, Description = "Internal: the GGUF file for --probe llamacpp." };
        var maxTokens = CliOptions.MaxTokens();
        var block = CliOptions.AdaptiveBlock();
        var guess = CliOptions.Guess();
        var runs = new Option<int>("--runs") { Description = "Timed runs over all prompts (after one warm-up).", DefaultValueFactory = _ => 3 };
        var passCost = new Option<bool>("--pass-cost") { Description = "Time an n-token pass against a 1-token pass instead." };
        var profile = new Option<bool>("--profile")
        {
            Description = "With --pass-cost: also split each pass's time by operation (linear, attention, norm, rope, swiglu, other).",
        };
        var context = new Option<int>("--context") { Description = "Context length for --pass-cost.", DefaultValueFactory = _ => 256 };
        var dtype = CliOptions.DType();
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var command = new Command("bench", "Measure decoders side by side (tokens/s, tokens per pass, memory, ratio to AR).")
        {
            model, decoders, prompts, promptCount, maxTokens, block, guess, runs, passCost, profile, context, dtype, device, threads, json, vsLlamaCpp, probe, gguf,
        };
        var decoding = new CliOptions.Decoding();
        decoding.AddTo(command);
        command.Subcommands.Add(PlotCommand());
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var side = new SideBySide(parse, model, prompts, promptCount, maxTokens, block, guess, runs, dtype, threads, gguf);
            if (parse.GetValue(probe) is { } engineName)
            {
                Console.WriteLine(JsonSerializer.Serialize(side.Probe(engineName)));
                return 0;
            }
            if (parse.GetValue(vsLlamaCpp))
            {
                if (parse.GetValue(device) != "cpu") throw new ArgumentException("--vs-llamacpp compares CPU engines; leave --device at cpu.");
                var comparison = side.Run();
                if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(comparison, CliOptions.JsonOutput));
                else SideBySide.Print(comparison);
                return 0;
            }

            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Device = parse.GetValue(device)!, Threads = parse.GetValue(threads),
            });
            var result = parse.GetValue(passCost)
                ? PassCost(engine, parse.GetValue(context), parse.GetValue(block) ?? 16, Math.Max(parse.GetValue(runs), 30), parse.GetValue(profile))
                : Decoders(engine, parse, decoders, prompts, promptCount, maxTokens, block, guess, runs, decoding);
            var text = JsonSerializer.Serialize(result, CliOptions.JsonOutput);
            if (parse.GetValue(json)) Console.WriteLine(text);
            else Print(result);
            return 0;
        }));
        return command;
    }

    static Dictionary<string, object?> Decoders(CllmEngine engine, ParseResult parse, Option<string> decodersOption,
        Option<string?> promptsOption, Option<int?> promptCountOption, Option<int> maxTokensOption, Option<int?> blockOption, Option<string> guessOption, Option<int> runsOption,
        CliOptions.Decoding decoding)
    {
        var kinds = parse.GetValue(decodersOption)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(CliOptions.ParseDecoder).Distinct().ToArray();
        var texts = ReadPrompts(parse.GetValue(promptsOption), parse.GetValue(promptCountOption));
        var prompts = texts.Select(t => engine.Tokenizer.Encode(t)).ToArray();
        var runs = parse.GetValue(runsOption);
        if (runs < 1) throw new ArgumentException("--runs must be at least 1.");
        GenerationOptions Options(DecoderKind kind) => decoding.Apply(new GenerationOptions
        {
            Decoder = kind, MaxNewTokens = parse.GetValue(maxTokensOption), BlockSize = parse.GetValue(blockOption),
            InitialGuess = CliOptions.ParseGuess(parse.GetValue(guessOption)!), StopTokenIds = [], Seed = 1,
        }, parse);

        // Warm-up, and the outputs every decoder must reproduce.
        var reference = new Dictionary<DecoderKind, int[][]>();
        foreach (var kind in kinds)
            reference[kind] = prompts.Select(p => engine.Generate(p, Options(kind)).SelectMany(c => c.Tokens).ToArray()).ToArray();

        var perRun = kinds.ToDictionary(k => k, _ => new List<(double Seconds, int Tokens, int Passes)>());
        for (var run = 0; run < runs; run++)
        {
            // Each run starts with an empty n-gram pool: a repeated prompt must not find its own earlier output.
            engine.ClearNgramPool();
            foreach (var prompt in prompts)
                foreach (var kind in kinds)
                {
                    var stats = new DecodingStats();
                    var clock = Stopwatch.StartNew();
                    foreach (var _ in engine.Generate(prompt, Options(kind), stats)) { }
                    clock.Stop();
                    perRun[kind].Add((clock.Elapsed.TotalSeconds, stats.GeneratedTokens, stats.ForwardPasses));
                }
        }

        // Tokens/s per run (all prompts of one run together), then the median over runs.
        double RunSpeed(DecoderKind kind, int run)
        {
            var slice = perRun[kind].Skip(run * prompts.Length).Take(prompts.Length).ToArray();
            return slice.Sum(x => x.Tokens) / slice.Sum(x => x.Seconds);
        }
        var baseline = kinds.Contains(DecoderKind.Autoregressive) ? DecoderKind.Autoregressive : kinds[0];
        var rows = kinds.Select(kind =>
        {
            var all = perRun[kind];
            var speeds = Enumerable.Range(0, runs).Select(r => RunSpeed(kind, r)).ToArray();
            var ratios = Enumerable.Range(0, runs).Select(r => RunSpeed(kind, r) / RunSpeed(baseline, r)).ToArray();
            return new Dictionary<string, object?>
            {
                ["decoder"] = CliOptions.Name(kind),
                ["tokens_per_second"] = Math.Round(Report.Median(speeds), 2),
                ["ms_per_token"] = Math.Round(1000 / Report.Median(speeds), 3),
                ["tokens_per_pass"] = Math.Round((double)all.Sum(x => x.Tokens) / all.Sum(x => x.Passes), 3),
                ["passes_per_token"] = Math.Round((double)all.Sum(x => x.Passes) / all.Sum(x => x.Tokens), 3),
                ["speed_ratio_to_ar"] = Math.Round(Report.Median(ratios), 3),
                // Greedy or sampled (every decoder draws token i with the same seeded u_i), the tokens must be AR's.
                ["same_tokens_as_ar"] = reference.TryGetValue(DecoderKind.Autoregressive, out var ar)
                    ? reference[kind].Zip(ar).Count(x => x.First.SequenceEqual(x.Second)) + "/" + prompts.Length
                    : null,
            };
        }).ToArray();
        return new Dictionary<string, object?>
        {
            ["model"] = engine.ModelDirectory,
            ["parameters_millions"] = Math.Round(engine.Config.ParameterCount / 1e6, 1),
            ["dtype"] = engine.Options.DType.ToString().ToLowerInvariant(),
            ["threads"] = get_num_threads(),
            ["prompts"] = prompts.Length,
            ["max_new_tokens"] = parse.GetValue(maxTokensOption),
            ["block"] = parse.GetValue(blockOption),
            ["ngram"] = parse.GetValue(decoding.NgramSize),
            ["ngrams_per_key"] = parse.GetValue(decoding.NgramsPerKey),
            ["temperature"] = parse.GetValue(decoding.Temperature),
            ["runs"] = runs,
            ["decoders"] = rows,
            ["peak_rss_mib"] = Report.PeakRssMiB(),
        };
    }

    /// <summary>Prompts from a text file (one per line), a JSONL file (a "prompt" field per line) or the built-in four.</summary>
    internal static string[] ReadPrompts(string? path, int? count)
    {
        string[] texts;
        if (path is null) texts = DefaultPrompts;
        else if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            texts = File.ReadLines(path).Where(l => l.Trim().Length > 0)
                .Select((l, i) => (JsonNode.Parse(l)?["prompt"]?.GetValue<string>())
                                  ?? throw new InvalidDataException($"{path} line {i + 1}: no \"prompt\" string."))
                .ToArray();
        else texts = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToArray();
        if (texts.Length == 0) throw new ArgumentException($"{path}: no prompts.");
        if (count is { } n && n < texts.Length)
        {
            if (n < 1) throw new ArgumentException("--prompt-count must be at least 1.");
            texts = Enumerable.Range(0, n).Select(i => texts[(int)((long)i * texts.Length / n)]).ToArray();
        }
        return texts;
    }

    /// <summary>Median time of a forward pass over n new tokens vs 1 new token after a context already cached.</summary>
    static Dictionary<string, object?> PassCost(CllmEngine engine, int context, int block, int repetitions, bool profile = false)
    {
        var model = engine.Model;
        if (context + block > engine.ContextLength)
            throw new ArgumentException($"--context {context} + --block {block} exceeds the engine's context ({engine.ContextLength}).");
        using var cache = new KvCache(model.Config, context + block, model.DType, model.Device);
        var random = new Random(1);
        var prefix = Enumerable.Range(0, context).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        var tokens = Enumerable.Range(0, block).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        using (var _ = inference_mode())
        using (var scope = NewDisposeScope())
            model.Forward(tensor(prefix).unsqueeze(0), 0, cache, lastPositionOnly: true);

        double Time(int count)
        {
            using var _ = inference_mode();
            using var scope = NewDisposeScope();
            var input = tensor(tokens.Take(count).ToArray()).unsqueeze(0);
            var clock = Stopwatch.StartNew();
            var logits = model.Forward(input, context, cache);
            logits.argmax(-1).data<long>().ToArray(); // what a decoder reads back
            clock.Stop();
            cache.Truncate(context);
            return clock.Elapsed.TotalMilliseconds;
        }

        for (var i = 0; i < 5; i++) { Time(1); Time(block); }
        var one = new List<double>();
        var many = new List<double>();
        for (var i = 0; i < repetitions; i++) // interleaved, so noise hits both alike
        {
            one.Add(Time(1));
            many.Add(Time(block));
        }
        var result = new Dictionary<string, object?>
        {
            ["model"] = engine.ModelDirectory,
            ["parameters_millions"] = Math.Round(model.Config.ParameterCount / 1e6, 1),
            ["dtype"] = engine.Options.DType.ToString().ToLowerInvariant(),
            ["threads"] = get_num_threads(),
            ["context"] = context,
            ["repetitions"] = repetitions,
            ["ms_1_token"] = Math.Round(Report.Median(one), 3),
            [$"ms_{block}_tokens"] = Math.Round(Report.Median(many), 3),
            ["best_ms_1_token"] = Math.Round(one.Min(), 3),
            [$"best_ms_{block}_tokens"] = Math.Round(many.Min(), 3),
            ["cost_ratio"] = Math.Round(Report.Median(many) / Report.Median(one), 3),
            ["ar_tokens_per_second_bound"] = Math.Round(1000 / Report.Median(one), 1),
            ["peak_rss_mib"] = Report.PeakRssMiB(),
        };
        if (profile)
            foreach (var count in new[] { 1, block })
                foreach (var (name, value) in Profile(model.Config, count, repetitions, Time))
                    result[$"profile_{count}_tokens_{name}"] = value;
        return result;
    }

    // The mean time per pass in each operation of the Kernels seam (the rest is "other": embedding, cache writes,
    // masks, residual adds, the logits' copy and argmax), and the linear products' rate against the multiply-adds they do.
    static Dictionary<string, object?> Profile(ModelConfig config, int count, int repetitions, Func<int, double> time)
    {
        PassProfile.Reset();
        PassProfile.Enabled = true;
        double total = 0;
        try
        {
            for (var i = 0; i < repetitions; i++) total += time(count);
        }
        finally
        {
            PassProfile.Enabled = false;
        }
        var ms = PassProfile.Milliseconds().Select(m => m / repetitions).ToArray();
        var profile = new Dictionary<string, object?>();
        for (var i = 0; i < ms.Length; i++) profile[$"{PassProfile.Names[i]}_ms"] = Math.Round(ms[i], 3);
        profile["other_ms"] = Math.Round(total / repetitions - ms.Sum(), 3);
        long d = config.HiddenSize, perToken = config.NumLayers * (d * config.QkvSize + config.NumHeads * config.HeadDim * d
            + 3 * d * config.IntermediateSize) + d * config.VocabSize;
        profile["linear_gmacs_per_second"] = Math.Round(count * perToken / (ms[PassProfile.Linear] / 1000) / 1e9, 1);
        return profile;
    }

    /// <summary><c>cllm bench plot</c>: a grouped bar chart of saved --vs-llamacpp results, speed relative to llama.cpp AR.</summary>
    static Command PlotCommand()
    {
        var output = new Option<string>("--out") { Description = "PNG file to write.", Required = true };
        var files = new Argument<string[]>("results") { Description = "JSON files written by `cllm bench --vs-llamacpp --json`.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("plot", "Chart saved --vs-llamacpp results (tokens/s as a multiple of llama.cpp AR) as a PNG.") { output, files };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var results = parse.GetValue(files)!.Select(f => JsonNode.Parse(File.ReadAllText(f))
                ?? throw new InvalidDataException($"{f}: not a JSON object.")).ToArray();
            var path = parse.GetValue(output)!;
            Plot(results, path);
            Console.WriteLine($"Wrote {path}");
            return 0;
        }));
        return command;
    }

    static void Plot(IReadOnlyList<JsonNode> results, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        string[] engines = [SideBySide.LlamaCppName, SideBySide.ArName, SideBySide.JacobiName];
        var bars = new List<ScottPlot.Bar>();
        var ticks = new List<double>();
        var labels = new List<string>();
        // Two groups per result: whole requests (prefill included) and decoding after the first token.
        var groups = results.SelectMany(r => new[]
        {
            (Result: r, Measure: "per request", Ratio: "speed_ratio", Speed: "tokens_per_second"),
            (Result: r, Measure: "decode only", Ratio: "decode_speed_ratio", Speed: "decode_tokens_per_second"),
        }).ToArray();
        for (var g = 0; g < groups.Length; g++)
        {
            var (r, measure, ratioKey, speedKey) = groups[g];
            var rows = r["engines"]!.AsArray();
            for (var e = 0; e < engines.Length; e++)
            {
                var row = rows.FirstOrDefault(x => x!["engine"]!.GetValue<string>() == engines[e])
                          ?? throw new InvalidDataException($"a result has no '{engines[e]}' row.");
                var ratio = row[ratioKey]!.GetValue<double>();
                bars.Add(new ScottPlot.Bar
                {
                    Position = g * (engines.Length + 1) + e,
                    Value = ratio,
                    FillColor = palette.GetColor(e),
                    Label = $"{ratio:0.00}x\n{row[speedKey]!.GetValue<double>():0}",
                });
            }
            ticks.Add(g * (engines.Length + 1) + (engines.Length - 1) / 2.0);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(r["model"]!.GetValue<string>()));
            labels.Add($"{name} ({r["parameters_millions"]}M, {r["dtype"]}, {r["threads"]} thr.)\n{measure}");
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 13;
        var one = plot.Add.HorizontalLine(1);
        one.LinePattern = ScottPlot.LinePattern.Dashed;
        one.Color = ScottPlot.Colors.Gray;
        for (var e = 0; e < engines.Length; e++)
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = engines[e], FillColor = palette.GetColor(e) });
        plot.Legend.Alignment = ScottPlot.Alignment.UpperRight;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray(), labels.ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.25);
        plot.Title("Greedy decoding speed relative to llama.cpp AR (same weights, prompts, threads; labels: ratio, tokens/s)");
        plot.YLabel("tokens/s ÷ llama.cpp AR tokens/s");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 1200, 640);
    }

    static void Print(Dictionary<string, object?> result)
    {
        foreach (var (key, value) in result)
        {
            if (value is Dictionary<string, object?>[] rows)
            {
                Console.WriteLine($"{"decoder",-9} {"tok/s",9} {"ms/tok",8} {"tok/pass",9} {"ratio",7} {"same as AR",11}");
                foreach (var row in rows)
                    Console.WriteLine($"{row["decoder"],-9} {row["tokens_per_second"],9} {row["ms_per_token"],8} {row["tokens_per_pass"],9} " +
                                      $"{row["speed_ratio_to_ar"],7} {row["same_tokens_as_ar"],11}");
            }
            else Console.WriteLine($"{key}: {value}");
        }
    }
}

/// <summary>
/// <c>cllm bench --vs-llamacpp</c>: llama.cpp AR, Cllm AR and Cllm Jacobi on the same weights (the model exported to a
/// temporary GGUF, F32 for a float32 engine), the same prompt token ids and the same thread count. Speeds are medians
/// over runs in one process, the engines interleaved prompt by prompt; llama.cpp runs with the oracle settings
/// (F32 KV cache, flash attention off), so its greedy tokens are the engine's and every engine generates the same text.
/// Peak RSS comes from one child process per engine (this command re-run with <c>--probe</c>), since one process
/// holding all three could not tell their memory apart.
/// </summary>
sealed class SideBySide(ParseResult parse, Option<string> modelOption, Option<string?> promptsOption, Option<int?> promptCountOption,
    Option<int> maxTokensOption, Option<int?> blockOption, Option<string> guessOption, Option<int> runsOption,
    Option<string> dtypeOption, Option<int?> threadsOption, Option<string?> ggufOption)
{
    public const string LlamaCppName = "llama.cpp AR", ArName = "Cllm AR", JacobiName = "Cllm Jacobi";

    string ModelDirectory => parse.GetValue(modelOption)!;
    int MaxTokens => parse.GetValue(maxTokensOption);
    int Threads => parse.GetValue(threadsOption) ?? Math.Max(1, Environment.ProcessorCount);
    ModelDType DType => CliOptions.ParseDType(parse.GetValue(dtypeOption)!);

    GenerationOptions Options(DecoderKind kind, IReadOnlyCollection<int> stops) => new()
    {
        Decoder = kind, MaxNewTokens = MaxTokens, BlockSize = parse.GetValue(blockOption),
        InitialGuess = CliOptions.ParseGuess(parse.GetValue(guessOption)!), StopTokenIds = stops, Seed = 1,
    };

    int[][] Prompts(TextTokenizer tokenizer) =>
        BenchCommand.ReadPrompts(parse.GetValue(promptsOption), parse.GetValue(promptCountOption)).Select(t => tokenizer.Encode(t)).ToArray();

    CllmEngine LoadEngine() => CllmEngine.Load(ModelDirectory, new EngineOptions { DType = DType, Threads = Threads });

    public Dictionary<string, object?> Run()
    {
        var runs = parse.GetValue(runsOption);
        if (runs < 1) throw new ArgumentException("--runs must be at least 1.");
        var total = Stopwatch.StartNew();
        using var engine = LoadEngine();
        var prompts = Prompts(engine.Tokenizer);
        var stops = engine.EosIds.ToArray();
        // The same weights llama.cpp-side: F32 for float32, BF16 bits for bfloat16, F16 for float16.
        var ggufType = DType switch { ModelDType.BFloat16 => GgufDType.BF16, ModelDType.Float16 => GgufDType.F16, _ => GgufDType.F32 };
        var gguf = Path.Combine(Path.GetTempPath(), $"cllm-bench-{Environment.ProcessId}.gguf");
        try
        {
            GgufExport.Export(engine.Model, GgufVocabulary.FromModelFolder(ModelDirectory, engine.Tokenizer), gguf, ggufType);
            using var llama = new LlamaCppPeer(gguf, ContextFor(engine, prompts), Threads);

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
                return new Dictionary<string, object?>
                {
                    ["engine"] = name,
                    ["tokens_per_second"] = Math.Round(Report.Median(speeds), 2),
                    ["speed_ratio"] = Math.Round(Report.Median(ratios), 3),
                    ["decode_tokens_per_second"] = Math.Round(Report.Median(decodeSpeeds), 2),
                    ["decode_speed_ratio"] = Math.Round(Report.Median(decodeRatios), 3),
                    ["ms_per_token"] = Math.Round(1000 / Report.Median(decodeSpeeds), 3),
                    ["ms_per_token_ratio"] = Math.Round(1 / Report.Median(decodeRatios), 3),
                    ["prefill_ms"] = Math.Round(Report.Median(all.Select(x => (x.Seconds - x.DecodeSeconds) * 1000)), 2),
                    ["tokens_per_pass"] = Math.Round((double)all.Sum(x => x.Tokens) / all.Sum(x => x.Passes), 3),
                    ["peak_rss_mib"] = rss[name],
                    ["rss_ratio"] = rss[name] is { } r && rss[LlamaCppName] is { } l ? Math.Round(r / l, 3) : null,
                    ["same_tokens_as_llamacpp"] = outputs[name].Zip(llamaTokens).Count(x => x.First.SequenceEqual(x.Second)) + "/" + prompts.Length,
                };
            }).ToArray();
            return new Dictionary<string, object?>
            {
                ["model"] = ModelDirectory,
                ["parameters_millions"] = Math.Round(engine.Config.ParameterCount / 1e6, 1),
                ["dtype"] = engine.Options.DType.ToString().ToLowerInvariant(),
                ["gguf_type"] = ggufType.ToString().ToLowerInvariant(),
                ["threads"] = Threads,
                ["prompts"] = prompts.Length,
                ["mean_prompt_tokens"] = Math.Round(prompts.Average(p => p.Length), 1),
                ["mean_generated_tokens"] = Math.Round(arTokens.Average(t => t.Length), 1),
                ["max_new_tokens"] = MaxTokens,
                ["stop_ids"] = stops,
                ["block"] = parse.GetValue(blockOption),
                ["guess"] = parse.GetValue(guessOption),
                ["runs"] = runs,
                ["llamacpp_settings"] = "LLamaSharp 0.30.0 CPU backend, F32 KV cache, flash attention off, greedy sampler",
                ["baseline_rss_mib"] = baselineRss,
                ["engines"] = rows,
                ["machine"] = $"{Environment.ProcessorCount} logical cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
                ["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1),
            };
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    int ContextFor(CllmEngine engine, int[][] prompts) =>
        Math.Min(engine.ContextLength, Math.Max(64, prompts.Max(p => p.Length) + MaxTokens + (parse.GetValue(blockOption) ?? BlockSizer.MaxBlockSize) + 8));

    /// <summary>Runs this command again in a child process that loads one engine only and reports its peak RSS.</summary>
    double? ProbeRss(string engineName, string? gguf)
    {
        var args = new List<string> { "bench", "--model", ModelDirectory, "--probe", engineName, "--max-tokens", MaxTokens.ToString(),
            "--guess", parse.GetValue(guessOption)!, "--dtype", parse.GetValue(dtypeOption)!,
            "--threads", Threads.ToString() };
        if (parse.GetValue(blockOption) is { } block) args.AddRange(["--block", block.ToString()]);
        if (parse.GetValue(promptsOption) is { } p) args.AddRange(["--prompts", Path.GetFullPath(p)]);
        if (parse.GetValue(promptCountOption) is { } n) args.AddRange(["--prompt-count", n.ToString()]);
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
        return JsonNode.Parse(stdout.Result.Trim().Split('\n')[^1])?["peak_rss_mib"]?.GetValue<double?>();
    }

    /// <summary>In a child process: load one engine, generate for every prompt twice, report the process's peak RSS.</summary>
    public Dictionary<string, object?> Probe(string engineName)
    {
        var tokenizer = TextTokenizer.Load(ModelDirectory);
        var prompts = Prompts(tokenizer);
        switch (engineName)
        {
            case "none":
                break;
            case "llamacpp":
            {
                var gguf = parse.GetValue(ggufOption) ?? throw new ArgumentException("--probe llamacpp needs --gguf.");
                var config = ModelConfig.Load(Path.Combine(ModelDirectory, ModelFiles.ConfigFile));
                var stops = config.EosTokenIds.Count > 0 ? config.EosTokenIds.ToArray() : tokenizer.EosIds.ToArray();
                var context = Math.Max(64, prompts.Max(p => p.Length) + MaxTokens + (parse.GetValue(blockOption) ?? BlockSizer.MaxBlockSize) + 8);
                using var llama = new LlamaCppPeer(gguf, Math.Min(context, config.MaxPositions), Threads);
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
        return new Dictionary<string, object?> { ["engine"] = engineName, ["peak_rss_mib"] = Report.PeakRssMiB() };
    }

    public static void Print(Dictionary<string, object?> result)
    {
        foreach (var (key, value) in result)
        {
            if (value is Dictionary<string, object?>[] rows)
            {
                Console.WriteLine($"{"engine",-12} {"tok/s",8} {"x",6} {"decode tok/s",12} {"x",6} {"ms/tok",7} {"x",6} {"prefill ms",10} " +
                                  $"{"tok/pass",8} {"RSS MiB",8} {"x",6} {"same tokens",11}");
                foreach (var row in rows)
                    Console.WriteLine($"{row["engine"],-12} {row["tokens_per_second"],8} {row["speed_ratio"],6} {row["decode_tokens_per_second"],12} " +
                                      $"{row["decode_speed_ratio"],6} {row["ms_per_token"],7} {row["ms_per_token_ratio"],6} {row["prefill_ms"],10} " +
                                      $"{row["tokens_per_pass"],8} {row["peak_rss_mib"],8} {row["rss_ratio"],6} {row["same_tokens_as_llamacpp"],11}");
            }
            else if (value is int[] ids) Console.WriteLine($"{key}: {string.Join(", ", ids)}");
            else Console.WriteLine($"{key}: {value}");
        }
    }
}

/// <summary>A GGUF model in llama.cpp through LLamaSharp: greedy generation from token ids, one sequence.</summary>
sealed class LlamaCppPeer : IDisposable
{
    static int _logConfigured;
    readonly LLamaWeights _weights;
    readonly LLamaContext _context;
    readonly GreedySamplingPipeline _sampler = new();

    public LlamaCppPeer(string gguf, int contextSize, int threads)
    {
        if (Interlocked.Exchange(ref _logConfigured, 1) == 0 && !NativeLibraryConfig.LLama.LibraryHasLoaded)
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
            });
        var parameters = new ModelParams(gguf)
        {
            ContextSize = (uint)contextSize, BatchSize = (uint)contextSize, UBatchSize = (uint)contextSize,
            Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    public int[] Greedy(IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int> stopIds) => Greedy(prompt, maxNew, stopIds, out _);

    /// <summary>Greedy generation; <paramref name="prefillSeconds"/>: time until the first token (the prompt's pass and its sampling).</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int> stopIds, out double prefillSeconds)
    {
        var clock = Stopwatch.StartNew();
        prefillSeconds = 0;
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var output = new List<int>();
        var position = prompt.Count;
        while (true)
        {
            var token = (int)_sampler.Sample(_context.NativeHandle, batch.TokenCount - 1);
            if (output.Count == 0) prefillSeconds = clock.Elapsed.TotalSeconds;
            output.Add(token);
            if (stopIds.Contains(token) || output.Count >= maxNew) break;
            batch.Clear();
            batch.Add(token, position++, LLamaSeqId.Zero, logits: true);
            Decode(batch);
        }
        return output.ToArray();
    }

    void Decode(LLamaBatch batch)
    {
        var result = _context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp's llama_decode failed: {result}.");
    }

    public void Dispose()
    {
        _sampler.Dispose();
        _context.Dispose();
        _weights.Dispose();
    }
}
