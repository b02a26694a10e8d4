namespace Cllm.Decoding;

public enum DecoderKind
{
    /// <summary>One token per forward pass: the baseline.</summary>
    Autoregressive,
    /// <summary>Guess a block of tokens and refine them all in parallel each pass; greedy, lossless.</summary>
    Jacobi,
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
    public DecoderKind Decoder { get; init; } = DecoderKind.Jacobi;
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Jacobi block size n: tokens refined per pass.</summary>
    public int BlockSize { get; init; } = 16;
    public JacobiGuess InitialGuess { get; init; } = JacobiGuess.RandomFromContext;
    /// <summary>0 is greedy. Sampling is autoregressive only for now.</summary>
    public float Temperature { get; init; }
    public float TopP { get; init; } = 1;
    /// <summary>0 keeps every token.</summary>
    public int TopK { get; init; }
    /// <summary>Seeds sampling and Jacobi's random guesses; the same seed gives the same output.</summary>
    public long? Seed { get; init; }
    /// <summary>Token ids that end generation (included in the output). Null means the model's EOS ids.</summary>
    public IReadOnlyCollection<int>? StopTokenIds { get; init; }

    public GenerationOptions Validate()
    {
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
        if (Decoder == DecoderKind.Jacobi && Temperature > 0)
            throw new NotSupportedException(
                "Jacobi decoding is greedy (Temperature = 0); to sample, use DecoderKind.Autoregressive, which is exact.");
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
