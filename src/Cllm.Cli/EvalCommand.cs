using Cllm.Text;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Cllm.Decoding;
using Cllm.Training;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm eval</c>: task accuracy and decoding speed on a prompts file, decoders interleaved prompt by prompt
/// in one process: exact-match accuracy per domain, tokens per pass, fast-forwarded and stationary tokens,
/// Jacobi == AR agreement and the Jacobi/AR wall-clock ratio.
/// </summary>
static class EvalCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompts = new Option<string>("--prompts") { Description = "Prompts JSONL with answers (cllm data).", Required = true };
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
        var command = new Command("eval", "Accuracy and speed of decoders on held-out prompts.")
        {
            model, prompts, decoders, block, guess, maxTokens, limit, dtype, threads, json, poolPerRequest,
        };
        decoding.AddTo(command);
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var kinds = parse.GetValue(decoders)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(CliOptions.ParseDecoder).Distinct().ToArray();
            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Threads = parse.GetValue(threads),
                KeepNgramPool = !parse.GetValue(poolPerRequest),
            });
            var items = CorpusWriter.ReadPrompts(parse.GetValue(prompts)!).Take(parse.GetValue(limit) ?? int.MaxValue).ToList();
            var results = kinds.ToDictionary(k => k, _ => new List<(string Domain, bool Correct, int[] Tokens, DecodingStats Stats, double Seconds)>());
            // Warm-up so that the first timed prompt does not pay for first-call costs.
            foreach (var kind in kinds)
                engine.Generate(engine.Tokenizer.Encode(items[0].Prompt), Options(kind, parse, maxTokens, block, guess, decoding)).ToList();
            engine.ClearNgramPool(); // lookahead starts cold: only the evaluated prompts fill its pool
            for (var i = 0; i < items.Count; i++)
            {
                var ids = engine.Tokenizer.Encode(items[i].Prompt);
                foreach (var kind in kinds)
                {
                    var stats = new DecodingStats();
                    var clock = Stopwatch.StartNew();
                    var tokens = engine.Generate(ids, Options(kind, parse, maxTokens, block, guess, decoding), stats).SelectMany(c => c.Tokens).ToArray();
                    clock.Stop();
                    var text = engine.Tokenizer.Decode(tokens); // keep <tool_call> markers; Evaluation strips <|end|>
                    results[kind].Add((items[i].Domain, Evaluation.IsCorrect(items[i].Domain, text, items[i].Answer), tokens, stats, clock.Elapsed.TotalSeconds));
                }
                Console.Error.Write($"\rprompt {i + 1}/{items.Count}   ");
            }
            Console.Error.WriteLine();

            var ar = results.GetValueOrDefault(DecoderKind.Autoregressive);
            var rows = kinds.Select(kind =>
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
            var result = new Dictionary<string, object?>
            {
                ["model"] = parse.GetValue(model), ["prompts"] = items.Count, ["block"] = parse.GetValue(block),
                ["ngram"] = parse.GetValue(decoding.NgramSize), ["ngrams_per_key"] = parse.GetValue(decoding.NgramsPerKey),
                ["temperature"] = parse.GetValue(decoding.Temperature),
                ["ngram_pool"] = parse.GetValue(poolPerRequest) ? "per request" : "kept across prompts",
                ["dtype"] = engine.Options.DType.ToString().ToLowerInvariant(), ["threads"] = TorchSharp.torch.get_num_threads(),
                ["decoders"] = rows,
            };
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(result, CliOptions.JsonOutput));
            else
            {
                Console.WriteLine($"{items.Count} prompts, block {parse.GetValue(block)}, N {result["ngram"]}, G {result["ngrams_per_key"]}, " +
                                  $"temperature {result["temperature"]}, {result["dtype"]}");
                Console.WriteLine($"{"decoder",-9} {"acc%",6} {"tok/pass",9} {"tok/s",8} {"ms/pass",8} {"speedup",8} {"same%",6} {"ff",6} {"stat",6} {"pooled",6}");
                foreach (var row in rows)
                    Console.WriteLine($"{row["decoder"],-9} {row["accuracy"],6} {row["tokens_per_pass"],9} {row["tokens_per_second"],8} {row["ms_per_pass"],8} " +
                                      $"{row.GetValueOrDefault("speedup_vs_ar"),8} {row.GetValueOrDefault("same_as_ar_percent"),6} {row["fast_forwarded_tokens"],6} " +
                                      $"{row["stationary_tokens"],6} {row["pooled_tokens"],6}");
            }
            return 0;
        }));
        return command;
    }

    static GenerationOptions Options(DecoderKind kind, ParseResult parse, Option<int> maxTokens, Option<int?> block, Option<string> guess,
        CliOptions.Decoding decoding) => decoding.Apply(new GenerationOptions
    {
        Decoder = kind, MaxNewTokens = parse.GetValue(maxTokens), BlockSize = parse.GetValue(block),
        InitialGuess = CliOptions.ParseGuess(parse.GetValue(guess)!), Seed = 1,
    }, parse);
}
