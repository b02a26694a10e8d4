namespace Cllm.Cli.Bench;

/// <summary>The text (non --json) form of bench results: one "key: value" line per setting, the rows as a table.</summary>
static class BenchPrinter
{
    public static void Print(DecoderComparisonResult r)
    {
        Line("model", r.Model);
        Line("parameters_millions", r.ParametersMillions);
        Line("dtype", r.DType);
        Line("threads", r.Threads);
        Line("prompts", r.Prompts);
        Line("max_new_tokens", r.MaxNewTokens);
        Line("block", r.Block);
        Line("ngram", r.Ngram);
        Line("ngrams_per_key", r.NgramsPerKey);
        Line("temperature", r.Temperature);
        Line("runs", r.Runs);
        Console.WriteLine($"{"decoder",-9} {"tok/s",9} {"ms/tok",8} {"tok/pass",9} {"ratio",7} {"same as AR",11}");
        foreach (var row in r.Decoders)
            Console.WriteLine($"{row.Decoder,-9} {row.TokensPerSecond,9} {row.MsPerToken,8} {row.TokensPerPass,9} " +
                              $"{row.SpeedRatioToAr,7} {row.SameTokensAsAr,11}");
        Line("peak_rss_mib", r.PeakRssMiB);
    }

    public static void Print(PassCostResult r)
    {
        Line("model", r.Model);
        Line("parameters_millions", r.ParametersMillions);
        Line("dtype", r.DType);
        Line("threads", r.Threads);
        Line("context", r.Context);
        Line("repetitions", r.Repetitions);
        Line("ms_1_token", r.MsOneToken);
        Line($"ms_{r.Block}_tokens", r.MsBlockTokens);
        Line("best_ms_1_token", r.BestMsOneToken);
        Line($"best_ms_{r.Block}_tokens", r.BestMsBlockTokens);
        Line("cost_ratio", r.CostRatio);
        Line("ar_tokens_per_second_bound", r.ArTokensPerSecondBound);
        Line("peak_rss_mib", r.PeakRssMiB);
        foreach (var (key, value) in r.Profiles.SelectMany(p => p.Keyed())) Line(key, value);
    }

    public static void Print(SideBySideResult r)
    {
        Line("model", r.Model);
        Line("parameters_millions", r.ParametersMillions);
        Line("dtype", r.DType);
        Line("gguf_type", r.GgufType);
        Line("threads", r.Threads);
        Line("prompts", r.Prompts);
        Line("mean_prompt_tokens", r.MeanPromptTokens);
        Line("mean_generated_tokens", r.MeanGeneratedTokens);
        Line("max_new_tokens", r.MaxNewTokens);
        Line("stop_ids", string.Join(", ", r.StopIds));
        Line("block", r.Block);
        Line("guess", r.Guess);
        Line("runs", r.Runs);
        Line("llamacpp_settings", r.LlamaCppSettings);
        Line("baseline_rss_mib", r.BaselineRssMiB);
        Console.WriteLine($"{"engine",-12} {"tok/s",8} {"x",6} {"decode tok/s",12} {"x",6} {"ms/tok",7} {"x",6} {"prefill ms",10} " +
                          $"{"tok/pass",8} {"RSS MiB",8} {"x",6} {"same tokens",11}");
        foreach (var row in r.Engines)
            Console.WriteLine($"{row.Engine,-12} {row.TokensPerSecond,8} {row.SpeedRatio,6} {row.DecodeTokensPerSecond,12} " +
                              $"{row.DecodeSpeedRatio,6} {row.MsPerToken,7} {row.MsPerTokenRatio,6} {row.PrefillMs,10} " +
                              $"{row.TokensPerPass,8} {row.PeakRssMiB,8} {row.RssRatio,6} {row.SameTokensAsLlamaCpp,11}");
        Line("machine", r.Machine);
        Line("seconds", r.Seconds);
    }

    static void Line(string key, object? value) => Console.WriteLine($"{key}: {value}");
}
