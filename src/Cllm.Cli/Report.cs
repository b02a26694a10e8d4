using Cllm.Decoding;

namespace Cllm.Cli;

/// <summary>Shapes numbers for JSON output and reads process memory.</summary>
static class Report
{
    public static object Stats(DecodingStats s) => new
    {
        prompt_tokens = s.PromptTokens,
        generated_tokens = s.GeneratedTokens,
        forward_passes = s.ForwardPasses,
        tokens_per_pass = Math.Round(s.TokensPerPass, 3),
        accepted_histogram = s.AcceptedHistogram(),
        fast_forwarded_tokens = s.FastForwardedTokens,
        stationary_tokens = s.StationaryTokens,
        pooled_tokens = s.PooledTokens,
        prefill_ms = Math.Round(s.PrefillTime.TotalMilliseconds, 2),
        decode_ms = Math.Round(s.DecodeTime.TotalMilliseconds, 2),
        decode_tokens_per_second = Math.Round(s.DecodeTokensPerSecond, 2),
    };

    /// <summary>Peak resident set size of this process in MiB (Linux VmHWM), or null where unknown.</summary>
    public static double? PeakRssMiB()
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return null;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? null : Math.Round(long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0, 1);
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
