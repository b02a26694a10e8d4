using System.Text.Json.Serialization;

namespace Cllm.Cli.Bench;

/// <summary>What <c>cllm bench --vs-llamacpp</c> measures: the settings, then one row per engine.</summary>
sealed record SideBySideResult
{
    public required string Model { get; init; }
    public required double ParametersMillions { get; init; }
    [JsonPropertyName("dtype")] public required string DType { get; init; }
    public required string GgufType { get; init; }
    public required int Threads { get; init; }
    public required int Prompts { get; init; }
    public required double MeanPromptTokens { get; init; }
    public required double MeanGeneratedTokens { get; init; }
    public required int MaxNewTokens { get; init; }
    public required int[] StopIds { get; init; }
    public required int? Block { get; init; }
    public required string Guess { get; init; }
    public required int Runs { get; init; }
    [JsonPropertyName("llamacpp_settings")] public required string LlamaCppSettings { get; init; }
    [JsonPropertyName("baseline_rss_mib")] public required double? BaselineRssMiB { get; init; }
    public required IReadOnlyList<EngineRow> Engines { get; init; }
    public required string Machine { get; init; }
    public required double Seconds { get; init; }
}

/// <summary>One engine's speeds (medians over runs), each also as a ratio to llama.cpp's, and its peak memory.</summary>
sealed record EngineRow
{
    public required string Engine { get; init; }
    public required double TokensPerSecond { get; init; }
    public required double SpeedRatio { get; init; }
    public required double DecodeTokensPerSecond { get; init; }
    public required double DecodeSpeedRatio { get; init; }
    public required double MsPerToken { get; init; }
    public required double MsPerTokenRatio { get; init; }
    public required double PrefillMs { get; init; }
    public required double TokensPerPass { get; init; }
    [JsonPropertyName("peak_rss_mib")] public required double? PeakRssMiB { get; init; }
    public required double? RssRatio { get; init; }
    [JsonPropertyName("same_tokens_as_llamacpp")] public required string SameTokensAsLlamaCpp { get; init; }
}
