using System.Text.Json.Serialization;

namespace Cllm.Cli.Bench;

/// <summary>
/// What <c>cllm bench --pass-cost</c> measures: a pass over 1 token against one over <see cref="Block"/> tokens after
/// the same cached context. The keys that name the block size (<c>ms_16_tokens</c>, <c>profile_16_tokens_linear_ms</c>)
/// are written through <see cref="BlockSizedKeys"/>, after the fixed keys (System.Text.Json writes extension data
/// last); the text output keeps them in place. The properties behind them are not <c>required</c>: System.Text.Json
/// rejects a required property it ignores.
/// </summary>
sealed record PassCostResult
{
    public required string? Model { get; init; }
    public required double ParametersMillions { get; init; }
    [JsonPropertyName("dtype")] public required string DType { get; init; }
    public required int Threads { get; init; }
    public required int Context { get; init; }
    public required int Repetitions { get; init; }
    [JsonIgnore] public int Block { get; init; }
    [JsonPropertyName("ms_1_token")] public required double MsOneToken { get; init; }
    [JsonIgnore] public double MsBlockTokens { get; init; }
    [JsonPropertyName("best_ms_1_token")] public required double BestMsOneToken { get; init; }
    [JsonIgnore] public double BestMsBlockTokens { get; init; }
    public required double CostRatio { get; init; }
    public required double ArTokensPerSecondBound { get; init; }
    [JsonPropertyName("peak_rss_mib")] public required double? PeakRssMiB { get; init; }
    /// <summary>With --profile: the 1-token pass's split, then the block pass's; empty without.</summary>
    [JsonIgnore] public IReadOnlyList<PassSplit> Profiles { get; init; } = [];

    /// <summary>The keys that depend on the block size, in the order they are printed.</summary>
    [JsonIgnore]
    public IEnumerable<KeyValuePair<string, double>> BlockSized =>
        new KeyValuePair<string, double>[] { new($"ms_{Block}_tokens", MsBlockTokens), new($"best_ms_{Block}_tokens", BestMsBlockTokens) }
            .Concat(Profiles.SelectMany(p => p.Keyed()));

    /// <summary>Written only (the results are never read back into this type).</summary>
    [JsonExtensionData]
    public Dictionary<string, object> BlockSizedKeys => BlockSized.ToDictionary(x => x.Key, x => (object)x.Value);
}

/// <summary>
/// The mean time per pass of <see cref="Tokens"/> tokens in each operation of the kernels seam (the rest is "other":
/// embedding, cache writes, masks, residual adds, the logits' copy and argmax), and the linear products' rate.
/// </summary>
sealed record PassSplit(int Tokens, IReadOnlyList<KeyValuePair<string, double>> OperationMs, double OtherMs, double LinearGmacsPerSecond)
{
    /// <summary>As written: <c>profile_{tokens}_tokens_{operation}_ms</c>, ..._other_ms, ..._linear_gmacs_per_second.</summary>
    public IEnumerable<KeyValuePair<string, double>> Keyed()
    {
        var prefix = $"profile_{Tokens}_tokens_";
        foreach (var (name, ms) in OperationMs) yield return new(prefix + name + "_ms", ms);
        yield return new(prefix + "other_ms", OtherMs);
        yield return new(prefix + "linear_gmacs_per_second", LinearGmacsPerSecond);
    }
}
