using Cllm.Text;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Cllm.Decoding;
using Cllm.Training;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm eval</c>: task accuracy and decoding speed on a prompts file or the splits of a data folder, decoders
/// interleaved prompt by prompt in one process: exact-match accuracy per domain, tokens per pass, fast-forwarded and stationary tokens,
/// Jacobi == AR agreement and the Jacobi/AR wall-clock ratio.
/// </summary>
static class EvalCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompts = new Option<string?>("--prompts") { Description = "Prompts JSONL with answers (cllm data)." };
        var dataFolder = new Option<string?>("--data")
        {
            Description = "A cllm data folder: evaluates its splits (test, heldout-values, heldout-phrasings; see --split) instead of --prompts.",
        };
        var splits = new Option<string?>("--split")
        {
            Description = "With --data: comma-separated splits among test, heldout-values, heldout-phrasings, heldout " +
                          "(default: the first three).",
        };
        var decoders = new Option<string>("--decoders") { DefaultValueFactory = _ => "ar,jacobi" };
        var block = CliOptions.AdaptiveBlock();
        var guess = CliOptions.Guess();
        var maxTokens = CliOptions.MaxTokens();
        var limit = new Option<int?>("--limit") { Description = "Use at most this many prompts." };
        var dtype = CliOptions.DType();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var decoding = new CliOptions.Decoding();
        var poolPerRequest = new Option<bool>("--pool-per-request")
        {
            Description = "Lookahead starts every prompt with an empty n-gram pool (default: the engine keeps it across prompts).",
        };
        var command = new Command("eval", "Accuracy and speed of decoders on evaluation prompts (a file, or the splits of a data folder).")
        {
            model, prompts, dataFolder, splits, decoders, block, guess, maxTokens, limit, dtype, threads, json, poolPerRequest,
        };
        decoding.AddTo(command);
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var kinds = parse.GetValue(decoders)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(CliOptions.ParseDecoder).Distinct().ToArray();
            var sets = PromptSets(parse.GetValue(prompts), parse.GetValue(dataFolder), parse.GetValue(splits));
            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Threads = parse.GetValue(threads),
                KeepNgramPool = !parse.GetValue(poolPerRequest),
            });
            var reports = new List<Dictionary<string, object?>>();
            foreach (var (name, path) in sets)
            {
                var items = CorpusWriter.ReadPrompts(path).Take(parse.GetValue(limit) ?? int.MaxValue).ToList();
                if (items.Count == 0) throw new InvalidDataException($"{path}: no prompts.");
                if (name is not null) Console.Error.WriteLine($"split {name}: {path}");
                var rows = Evaluate(engine, items, kinds, kind => Options(kind, parse, maxTokens, block, guess, decoding));
                reports.Add(new Dictionary<string, object?> { ["split"] = name, ["prompts_file"] = path, ["prompts"] = items.Count, ["decoders"] = rows });
            }

            var result = new Dictionary<string, object?>
            {
                ["model"] = parse.GetValue(model), ["block"] = parse.GetValue(block),
                ["ngram"] = parse.GetValue(decoding.NgramSize), ["ngrams_per_key"] = parse.GetValue(decoding.NgramsPerKey),
                ["temperature"] = parse.GetValue(decoding.Temperature),
                ["ngram_pool"] = parse.GetValue(poolPerRequest) ? "per request" : "kept across prompts",
                ["dtype"] = engine.Options.DType.ToString().ToLowerInvariant(), ["threads"] = TorchSharp.torch.get_num_threads(),
            };
            // One prompts file keeps the report's first shape (prompts and decoders at the top); a data folder lists splits.
            if (parse.GetValue(prompts) is not null)
            {
                result["prompts"] = reports[0]["prompts"];
                result["decoders"] = reports[0]["decoders"];
            }
            else result["splits"] = reports;

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, CliOptions.JsonOutput));
                return 0;
            }

            Console.WriteLine($"block {parse.GetValue(block)}, N {result["ngram"]}, G {result["ngrams_per_key"]}, " +
                              $"temperature {result["temperature"]}, {result["dtype"]}");
            foreach (var report in reports)
            {
                Console.WriteLine($"{report["split"] ?? report["prompts_file"]}: {report["prompts"]} prompts");
                Console.WriteLine($"{"decoder",-9} {"acc%",6} {"tok/pass",9} {"tok/s",8} {"ms/pass",8} {"speedup",8} {"same%",6} {"ff",6} {"stat",6} {"pooled",6}");
                foreach (var row in (Dictionary<string, object?>[])report["decoders"]!)
                    Console.WriteLine($"{row["decoder"],-9} {row["accuracy"],6} {row["tokens_per_pass"],9} {row["tokens_per_second"],8} {row["ms_per_pass"],8} " +
                                      $"{row.GetValueOrDefault("speedup_vs_ar"),8} {row.GetValueOrDefault("same_as_ar_percent"),6} {row["fast_forwarded_tokens"],6} " +
                                      $"{row["stationary_tokens"],6} {row["pooled_tokens"],6}");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>The prompts files to evaluate: <c>--prompts</c> alone, or the chosen splits of a <c>cllm data</c> folder.</summary>
    static List<(string? Name, string Path)> PromptSets(string? prompts, string? folder, string? splits)
    {
        if ((prompts is null) == (folder is null))
            throw new ArgumentException("Give either --prompts FILE or --data FOLDER (a cllm data folder), not both or neither.");
        if (prompts is not null)
        {
            if (splits is not null) throw new ArgumentException("--split selects files of a --data folder; with --prompts leave it out.");
            return [(null, prompts)];
        }

        var known = DataCommand.EvaluationSplits.Select(s => s.Name).ToArray();
        var names = splits?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? DefaultSplits;
        var sets = new List<(string?, string)>();
        foreach (var name in names.Distinct())
        {
            if (!known.Contains(name))
                throw new ArgumentException($"Unknown --split '{name}'; use {string.Join(", ", known)} (comma-separated).");
            var path = Path.Combine(folder!, DataCommand.PromptsFile(name));
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path} is missing: --data must be a folder written by `cllm data` (which writes the splits).", path);
            sets.Add((name, path));
        }

        return sets;
    }

    static readonly string[] DefaultSplits = ["test", "heldout-values", "heldout-phrasings"];

    /// <summary>Runs every decoder on every prompt (interleaved, prompt by prompt) and returns one report row per decoder.</summary>
    static Dictionary<string, object?>[] Evaluate(CllmEngine engine, List<EvalPrompt> items, DecoderKind[] kinds, Func<DecoderKind, GenerationOptions> options)
    {
        var results = kinds.ToDictionary(k => k, _ => new List<(string Domain, bool Correct, int[] Tokens, DecodingStats Stats, double Seconds)>());
        // Warm-up so that the first timed prompt does not pay for first-call costs.
        foreach (var kind in kinds)
            engine.Generate(engine.Tokenizer.Encode(items[0].Prompt), options(kind)).ToList();
        engine.ClearNgramPool(); // lookahead starts cold: only the evaluated prompts fill its pool
        for (var i = 0; i < items.Count; i++)
        {
            var ids = engine.Tokenizer.Encode(items[i].Prompt);
            foreach (var kind in kinds)
            {
                var stats = new DecodingStats();
                var clock = Stopwatch.StartNew();
                var tokens = engine.Generate(ids, options(kind), stats).SelectMany(c => c.Tokens).ToArray();
                clock.Stop();
                var text = engine.Tokenizer.Decode(tokens); // keep <tool_call> markers; Evaluation strips <|end|>
                results[kind].Add((items[i].Domain, Evaluation.IsCorrect(items[i].Domain, text, items[i].Answer), tokens, stats, clock.Elapsed.TotalSeconds));
            }
            Console.Error.Write($"\rprompt {i + 1}/{items.Count}   ");
        }
        Console.Error.WriteLine();

        var ar = results.GetValueOrDefault(DecoderKind.Autoregressive);
        return kinds.Select(kind =>
        {
            var r = results[kind];
            var row = new Dictionary<string, object?>
            {
                ["decoder"] = CliOptions.Name(kind),
                ["accuracy"] = Math.Round(100.0 * r.Count(x => x.Correct) / r.Count, 1),
                ["accuracy_by_domain"] = r.GroupBy(x => x.Domain).ToDictionary(g => g.Key, g => Math.Round(100.0 * g.Count(x => x.Correct) / g.Count(), 1)),
                ["tokens"] = r.Sum(x => x.Stats.GeneratedTokens),
                ["forward_passes"] = r.Sum(x => x.Stats.ForwardPasses),
                ["tokens_per_pass"] = Math.Round((double)r.Sum(x => x.Stats.GeneratedTokens) / r.Sum(x => x.Stats.ForwardPasses), 3),
                ["tokens_per_second"] = Math.Round(r.Sum(x => x.Stats.GeneratedTokens) / r.Sum(x => x.Seconds), 1),
                ["ms_per_pass"] = Math.Round(1000 * r.Sum(x => x.Seconds) / r.Sum(x => x.Stats.ForwardPasses), 3),
                ["fast_forwarded_tokens"] = r.Sum(x => x.Stats.FastForwardedTokens),
                ["stationary_tokens"] = r.Sum(x => x.Stats.StationaryTokens),
                ["pooled_tokens"] = r.Sum(x => x.Stats.PooledTokens),
                ["accepted_histogram"] = DecodingStats.Histogram(r.SelectMany(x => x.Stats.AcceptedPerPass)),
            };
            if (ar is not null)
            {
                // Greedy or sampled (every decoder draws token i with the same seeded u_i), the tokens must be AR's.
                row["same_as_ar_percent"] = Math.Round(100.0 * r.Zip(ar).Count(x => x.First.Tokens.SequenceEqual(x.Second.Tokens)) / r.Count, 1);
                row["speedup_vs_ar"] = Math.Round(ar.Sum(x => x.Seconds) / r.Sum(x => x.Seconds) * r.Sum(x => x.Stats.GeneratedTokens) / ar.Sum(x => x.Stats.GeneratedTokens), 3);
            }
            return row;
        }).ToArray();
    }

    static GenerationOptions Options(DecoderKind kind, ParseResult parse, Option<int> maxTokens, Option<int?> block, Option<string> guess,
        CliOptions.Decoding decoding) => decoding.Apply(new GenerationOptions
    {
        Decoder = kind, MaxNewTokens = parse.GetValue(maxTokens), BlockSize = parse.GetValue(block),
        InitialGuess = CliOptions.ParseGuess(parse.GetValue(guess)!), Seed = 1,
    }, parse);
}
