using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Cllm.Decoding;
using Cllm.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm bench</c>: decoders side by side on the same prompts in one process, interleaved run by run so
/// that machine noise hits them alike; every speed is also given as a ratio to AR measured in the same run.
/// <c>--pass-cost</c> instead times one forward pass of n tokens against one of 1 token at a given context.
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
        var decoders = new Option<string>("--decoders") { Description = "Comma-separated: ar, jacobi.", DefaultValueFactory = _ => "ar,jacobi" };
        var prompts = new Option<string?>("--prompts") { Description = "File with one prompt per line (default: four built-in prompts)." };
        var maxTokens = CliOptions.MaxTokens();
        var block = CliOptions.Block();
        var guess = CliOptions.Guess();
        var runs = new Option<int>("--runs") { Description = "Timed runs over all prompts (after one warm-up).", DefaultValueFactory = _ => 3 };
        var passCost = new Option<bool>("--pass-cost") { Description = "Time an n-token pass against a 1-token pass instead." };
        var context = new Option<int>("--context") { Description = "Context length for --pass-cost.", DefaultValueFactory = _ => 256 };
        var dtype = CliOptions.DType();
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var command = new Command("bench", "Measure decoders side by side (tokens/s, tokens per pass, memory, ratio to AR).")
        {
            model, decoders, prompts, maxTokens, block, guess, runs, passCost, context, dtype, device, threads, json,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Device = parse.GetValue(device)!, Threads = parse.GetValue(threads),
            });
            var result = parse.GetValue(passCost)
                ? PassCost(engine, parse.GetValue(context), parse.GetValue(block), Math.Max(parse.GetValue(runs), 30))
                : Decoders(engine, parse, decoders, prompts, maxTokens, block, guess, runs);
            var text = JsonSerializer.Serialize(result, CliOptions.JsonOutput);
            if (parse.GetValue(json)) Console.WriteLine(text);
            else Print(result);
            return 0;
        }));
        return command;
    }

    static Dictionary<string, object?> Decoders(CllmEngine engine, ParseResult parse, Option<string> decodersOption,
        Option<string?> promptsOption, Option<int> maxTokensOption, Option<int> blockOption, Option<string> guessOption, Option<int> runsOption)
    {
        var kinds = parse.GetValue(decodersOption)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(CliOptions.ParseDecoder).Distinct().ToArray();
        var promptFile = parse.GetValue(promptsOption);
        var texts = promptFile is null ? DefaultPrompts : File.ReadAllLines(promptFile).Where(l => l.Trim().Length > 0).ToArray();
        var prompts = texts.Select(t => engine.Tokenizer.Encode(t)).ToArray();
        var runs = parse.GetValue(runsOption);
        if (runs < 1) throw new ArgumentException("--runs must be at least 1.");
        GenerationOptions Options(DecoderKind kind) => new()
        {
            Decoder = kind, MaxNewTokens = parse.GetValue(maxTokensOption), BlockSize = parse.GetValue(blockOption),
            InitialGuess = CliOptions.ParseGuess(parse.GetValue(guessOption)!), StopTokenIds = [], Seed = 1,
        };

        // Warm-up, and the outputs every decoder must reproduce.
        var reference = new Dictionary<DecoderKind, int[][]>();
        foreach (var kind in kinds)
            reference[kind] = prompts.Select(p => engine.Generate(p, Options(kind)).SelectMany(c => c.Tokens).ToArray()).ToArray();

        var perRun = kinds.ToDictionary(k => k, _ => new List<(double Seconds, int Tokens, int Passes)>());
        for (var run = 0; run < runs; run++)
            foreach (var prompt in prompts)
                foreach (var kind in kinds)
                {
                    var stats = new DecodingStats();
                    var clock = Stopwatch.StartNew();
                    foreach (var _ in engine.Generate(prompt, Options(kind), stats)) { }
                    clock.Stop();
                    perRun[kind].Add((clock.Elapsed.TotalSeconds, stats.GeneratedTokens, stats.ForwardPasses));
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
                ["decoder"] = kind == DecoderKind.Autoregressive ? "ar" : "jacobi",
                ["tokens_per_second"] = Math.Round(Report.Median(speeds), 2),
                ["ms_per_token"] = Math.Round(1000 / Report.Median(speeds), 3),
                ["tokens_per_pass"] = Math.Round((double)all.Sum(x => x.Tokens) / all.Sum(x => x.Passes), 3),
                ["passes_per_token"] = Math.Round((double)all.Sum(x => x.Passes) / all.Sum(x => x.Tokens), 3),
                ["speed_ratio_to_ar"] = Math.Round(Report.Median(ratios), 3),
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
            ["runs"] = runs,
            ["decoders"] = rows,
            ["peak_rss_mib"] = Report.PeakRssMiB(),
        };
    }

    /// <summary>Median time of a forward pass over n new tokens vs 1 new token after a context already cached.</summary>
    static Dictionary<string, object?> PassCost(CllmEngine engine, int context, int block, int repetitions)
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
        return new Dictionary<string, object?>
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
    }

    static void Print(Dictionary<string, object?> result)
    {
        foreach (var (key, value) in result)
        {
            if (value is Dictionary<string, object?>[] rows)
            {
                Console.WriteLine($"{"decoder",-8} {"tok/s",9} {"ms/tok",8} {"tok/pass",9} {"ratio",7} {"same as AR",11}");
                foreach (var row in rows)
                    Console.WriteLine($"{row["decoder"],-8} {row["tokens_per_second"],9} {row["ms_per_token"],8} {row["tokens_per_pass"],9} " +
                                      $"{row["speed_ratio_to_ar"],7} {row["same_tokens_as_ar"],11}");
            }
            else Console.WriteLine($"{key}: {value}");
        }
    }
}
