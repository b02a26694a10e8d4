using System.Text.Json.Serialization;

namespace Cllm.Cli.Bench;

/// <summary>What a <c>--probe</c> child process reports to its parent: one engine's peak RSS.</summary>
sealed record RssProbeResult(string Engine, [property: JsonPropertyName("peak_rss_mib")] double? PeakRssMiB);
