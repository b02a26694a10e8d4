using System.Text.Json.Serialization;

namespace Cllm.Cli.Bench;

/// <summary>What <c>cllm bench</c> measures of decoders side by side: the settings, then one row per decoder.</summary>
sealed record DecoderComparisonResult
{
    public required string? Model { get; init; }
    public required double ParametersMillions { get; init; }
    [JsonPropertyName("dtype")] public required string DType { get; init; }
    public required int Threads { get; init; }
    public required int Prompts { get; init; }
    public required int MaxNewTokens { get; init; }
    public required int? Block { get; init; }
    public required int Ngram { get; init; }
    public required int NgramsPerKey { get; init; }
    public required float Temperature { get; init; }
    public required int Runs { get; init; }
    public required IReadOnlyList<DecoderRow> Decoders { get; init; }
    [JsonPropertyName("peak_rss_mib")] public required double? PeakRssMiB { get; init; }
}

/// <summary>One decoder's speeds (medians over runs), its tokens per pass and whether it reproduced AR's tokens.</summary>
sealed record DecoderRow
{
    public required string Decoder { get; init; }
    public required double TokensPerSecond { get; init; }
    public required double MsPerToken { get; init; }
    public required double TokensPerPass { get; init; }
    public required double PassesPerToken { get; init; }
    public required double SpeedRatioToAr { get; init; }
    /// <summary>"k/n": prompts whose tokens equal AR's; null when AR was not among the decoders.</summary>
    public required string? SameTokensAsAr { get; init; }
}
