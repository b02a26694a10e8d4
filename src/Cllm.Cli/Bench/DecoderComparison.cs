using System.Diagnostics;
using Cllm.Decoding;
using static TorchSharp.torch;

namespace Cllm.Cli.Bench;

/// <summary>
/// <c>cllm bench</c>: decoders side by side on the same prompts in one process, interleaved run by run so that machine
/// noise hits them alike; every speed is also given as a ratio to AR measured in the same run.
/// </summary>
static class DecoderComparison
{
    public static DecoderComparisonResult Run(CllmEngine engine, BenchSettings settings)
    {
        var kinds = settings.Decoders.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(CliOptions.ParseDecoder).Distinct().ToArray();
        var texts = BenchPrompts.Read(settings.PromptsPath, settings.PromptCount);
        var prompts = texts.Select(t => engine.Tokenizer.Encode(t)).ToArray();
        var runs = settings.Runs;
        if (runs < 1) throw new ArgumentException("--runs must be at least 1.");
        GenerationOptions Options(DecoderKind kind) => settings.ApplyDecoding(new GenerationOptions
        {
            Decoder = kind, MaxNewTokens = settings.MaxTokens, BlockSize = settings.Block,
            InitialGuess = settings.GuessPolicy, StopTokenIds = [], Seed = 1,
        });

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
            return new DecoderRow
            {
                Decoder = CliOptions.Name(kind),
                TokensPerSecond = Math.Round(Report.Median(speeds), 2),
                MsPerToken = Math.Round(1000 / Report.Median(speeds), 3),
                TokensPerPass = Math.Round((double)all.Sum(x => x.Tokens) / all.Sum(x => x.Passes), 3),
                PassesPerToken = Math.Round((double)all.Sum(x => x.Passes) / all.Sum(x => x.Tokens), 3),
                SpeedRatioToAr = Math.Round(Report.Median(ratios), 3),
                // Greedy or sampled (every decoder draws token i with the same seeded u_i), the tokens must be AR's.
                SameTokensAsAr = reference.TryGetValue(DecoderKind.Autoregressive, out var ar)
                    ? reference[kind].Zip(ar).Count(x => x.First.SequenceEqual(x.Second)) + "/" + prompts.Length
                    : null,
            };
        }).ToArray();
        return new DecoderComparisonResult
        {
            Model = engine.ModelDirectory,
            ParametersMillions = Math.Round(engine.Config.ParameterCount / 1e6, 1),
            DType = engine.Options.DType.ToString().ToLowerInvariant(),
            Threads = get_num_threads(),
            Prompts = prompts.Length,
            MaxNewTokens = settings.MaxTokens,
            Block = settings.Block,
            Ngram = settings.NgramSize,
            NgramsPerKey = settings.NgramsPerKey,
            Temperature = settings.Temperature,
            Runs = runs,
            Decoders = rows,
            PeakRssMiB = Report.PeakRssMiB(),
        };
    }
}
