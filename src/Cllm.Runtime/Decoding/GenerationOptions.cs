using Cllm.Constraints;

namespace Cllm.Decoding;

[System.ComponentModel.TypeConverter(typeof(DecoderKindConverter))]
public enum DecoderKind
{
    /// <summary>One token per forward pass: the baseline.</summary>
    Autoregressive,
    /// <summary>Guess a block of tokens and refine them all in parallel each pass; lossless (greedy: the same
    /// tokens as autoregressive; sampling: the same distribution).</summary>
    Jacobi,
    /// <summary>Jacobi plus an n-gram pool: each pass also verifies remembered n-grams that start with the last
    /// token, in separate branches of the same pass. Lossless like Jacobi.</summary>
    Lookahead,
}

/// <summary>How Jacobi decoding fills the guessed slots of a new block.</summary>
public enum JacobiGuess
{
    /// <summary>Tokens drawn uniformly, with replacement, from the prompt and the output so far (the CLLM reference).</summary>
    RandomFromContext,
    /// <summary>The tokens that followed the latest earlier occurrence of the last token(s) in the context
    /// (prompt lookup); random context tokens where there is none.</summary>
    PromptLookup,
}

/// <summary>What to generate and how. Immutable; validated by <see cref="Validate"/>.</summary>
public sealed record GenerationOptions
{
    /// <summary>Lookahead defaults, tuned on the default models (docs/benchmarks.md).</summary>
    public const int DefaultNgramSize = 4, DefaultNgramsPerKey = 4;

    public DecoderKind Decoder { get; init; } = DecoderKind.Jacobi;
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Jacobi block size n: tokens refined per pass (the last final token and n-1 guesses; lookahead's window).
    /// Null (the default): the engine chooses n pass by pass from the measured cost of a pass on this machine and the
    /// acceptance it observes (<see cref="BlockSizer"/>). The tokens are the same at any n; only the speed differs.</summary>
    public int? BlockSize { get; init; }
    /// <summary>Lookahead's n-gram size N: each pooled n-gram drafts N-1 tokens after its first.</summary>
    public int NgramSize { get; init; } = DefaultNgramSize;
    /// <summary>Lookahead's G: n-grams kept (and verified) per first token, least recently used evicted.</summary>
    public int NgramsPerKey { get; init; } = DefaultNgramsPerKey;
    public JacobiGuess InitialGuess { get; init; } = JacobiGuess.RandomFromContext;
    /// <summary>0 is greedy, and so is any temperature too small to divide by (the distribution is then the
    /// argmax's). Every decoder samples from the model's (filtered) distribution, exactly up to float rounding.</summary>
    public float Temperature { get; init; }
    public float TopP { get; init; } = 1;
    /// <summary>0 keeps every token.</summary>
    public int TopK { get; init; }
    /// <summary>Seeds sampling and Jacobi's random guesses; the same seed gives the same output.</summary>
    public long? Seed { get; init; }
    /// <summary>Token ids that end generation (included in the output). Null means the model's EOS ids.</summary>
    public IReadOnlyCollection<int>? StopTokenIds { get; init; }
    /// <summary>Which of the engine's kept n-gram pools lookahead drafts from and fills: requests with the same key
    /// share n-grams, others never see them. Null: the engine-wide pool. See <see cref="EngineOptions.KeepNgramPool"/>.</summary>
    public string? NgramPoolKey { get; init; }

    /// <summary>
    /// Guaranteed structure: only tokens that keep the output a prefix of the constraint's grammar are chosen
    /// (JSON, a JSON schema, a tool call; see <see cref="TokenConstraint"/>), the stop ids only once it is
    /// complete, and the generation ends by itself when nothing more may follow. Every decoder applies it, and
    /// Jacobi and lookahead still give constrained autoregressive decoding's very tokens. Null: unconstrained.
    /// </summary>
    public TokenConstraint? Constraint { get; init; }

    public GenerationOptions Validate()
    {
        if (!Enum.IsDefined(Decoder))
            throw new ArgumentOutOfRangeException(nameof(Decoder), Decoder,
                $"Decoder {(int)Decoder} is not a DecoderKind; use {string.Join(", ", Enum.GetNames<DecoderKind>())}.");
        if (!Enum.IsDefined(InitialGuess))
            throw new ArgumentOutOfRangeException(nameof(InitialGuess), InitialGuess,
                $"InitialGuess {(int)InitialGuess} is not a JacobiGuess; use {string.Join(", ", Enum.GetNames<JacobiGuess>())}.");
        if (StopTokenIds?.Any(id => id < 0) == true)
            throw new ArgumentOutOfRangeException(nameof(StopTokenIds), StopTokenIds.First(id => id < 0), "StopTokenIds must be token ids >= 0.");
        if (MaxNewTokens <= 0)
            throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), MaxNewTokens, "MaxNewTokens must be at least 1.");
        if (BlockSize is < 2 or > 256)
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "Jacobi BlockSize must be between 2 and 256.");
        if (!float.IsFinite(Temperature) || Temperature < 0)
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number >= 0.");
        if (!float.IsFinite(TopP) || TopP is <= 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in (0, 1].");
        if (TopK < 0)
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be >= 0 (0 keeps every token).");
        if (NgramSize is < 2 or > 32)
            throw new ArgumentOutOfRangeException(nameof(NgramSize), NgramSize, "Lookahead NgramSize must be between 2 and 32.");
        if (NgramsPerKey is < 1 or > 64)
            throw new ArgumentOutOfRangeException(nameof(NgramsPerKey), NgramsPerKey, "Lookahead NgramsPerKey must be between 1 and 64.");
        return this;
    }
}

/// <summary>The tokens one forward pass made final, in order.</summary>
public readonly record struct TokenChunk(int[] Tokens);

public enum FinishReason
{
    /// <summary>Still generating.</summary>
    None,
    /// <summary>A stop (EOS) token was generated.</summary>
    Stop,
    /// <summary>MaxNewTokens was reached or the context is full.</summary>
    Length,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
}
