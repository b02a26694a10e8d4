using System.ComponentModel;
using System.Globalization;

namespace Cllm.Decoding;

/// <summary>
/// Generation settings where every field may be left unset (null), so layers can be stacked: a request's own
/// settings first, then what a caller or a host configured, then the built-in defaults. <see cref="Or"/> fills
/// what is unset; <see cref="ToOptions"/> makes the engine's <see cref="GenerationOptions"/> (the engine validates).
/// </summary>
public sealed record GenerationSettings
{
    /// <summary>"ar" / "autoregressive", "jacobi" or "lookahead" in configuration (<see cref="DecoderKinds.Parse"/>).</summary>
    public DecoderKind? Decoder { get; init; }
    public int? MaxNewTokens { get; init; }
    public int? BlockSize { get; init; }
    public int? NgramSize { get; init; }
    public int? NgramsPerKey { get; init; }
    public JacobiGuess? InitialGuess { get; init; }
    public float? Temperature { get; init; }
    public float? TopP { get; init; }
    public int? TopK { get; init; }
    public long? Seed { get; init; }

    /// <summary>These settings, with what they leave unset taken from <paramref name="fallback"/>.</summary>
    public GenerationSettings Or(GenerationSettings? fallback) => fallback is null ? this : new()
    {
        Decoder = Decoder ?? fallback.Decoder,
        MaxNewTokens = MaxNewTokens ?? fallback.MaxNewTokens,
        BlockSize = BlockSize ?? fallback.BlockSize,
        NgramSize = NgramSize ?? fallback.NgramSize,
        NgramsPerKey = NgramsPerKey ?? fallback.NgramsPerKey,
        InitialGuess = InitialGuess ?? fallback.InitialGuess,
        Temperature = Temperature ?? fallback.Temperature,
        TopP = TopP ?? fallback.TopP,
        TopK = TopK ?? fallback.TopK,
        Seed = Seed ?? fallback.Seed,
    };

    /// <summary>The engine's options: set fields as they are, unset ones at <see cref="GenerationOptions"/>' defaults.</summary>
    public GenerationOptions ToOptions()
    {
        var d = new GenerationOptions();
        return d with
        {
            Decoder = Decoder ?? d.Decoder,
            MaxNewTokens = MaxNewTokens ?? d.MaxNewTokens,
            BlockSize = BlockSize ?? d.BlockSize,
            NgramSize = NgramSize ?? d.NgramSize,
            NgramsPerKey = NgramsPerKey ?? d.NgramsPerKey,
            InitialGuess = InitialGuess ?? d.InitialGuess,
            Temperature = Temperature ?? d.Temperature,
            TopP = TopP ?? d.TopP,
            TopK = TopK ?? d.TopK,
            Seed = Seed ?? d.Seed,
        };
    }
}

/// <summary>The one parser of decoder names, used by configuration binding, the CLI and the chat client.</summary>
public static class DecoderKinds
{
    /// <summary>"ar" or "autoregressive", "jacobi", "lookahead" (any case).</summary>
    /// <exception cref="FormatException">Any other text, numbers included.</exception>
    public static DecoderKind Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "ar" or "autoregressive" => DecoderKind.Autoregressive,
        "jacobi" => DecoderKind.Jacobi,
        "lookahead" => DecoderKind.Lookahead,
        _ => throw new FormatException($"Unknown decoder '{name}'; use ar (autoregressive), jacobi or lookahead."),
    };

    /// <summary>The short name <see cref="Parse"/> reads: "ar", "jacobi" or "lookahead".</summary>
    public static string Name(DecoderKind kind) => kind switch
    {
        DecoderKind.Autoregressive => "ar",
        DecoderKind.Jacobi => "jacobi",
        DecoderKind.Lookahead => "lookahead",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a decoder."),
    };
}

/// <summary>Lets configuration binding read decoder names with <see cref="DecoderKinds.Parse"/> ("ar" included).</summary>
public sealed class DecoderKindConverter : EnumConverter
{
    public DecoderKindConverter() : base(typeof(DecoderKind)) { }

    public override object ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value) =>
        value is string s ? DecoderKinds.Parse(s) : base.ConvertFrom(context, culture, value)!;
}
