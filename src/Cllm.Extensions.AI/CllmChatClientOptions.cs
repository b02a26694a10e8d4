using Cllm.Decoding;

namespace Cllm.Extensions.AI;

/// <summary>
/// How a <see cref="CllmChatClient"/> loads and runs its model. Binds from configuration
/// (e.g. <c>"Cllm": { "ModelPath": "models/cllm-tiny", "Decoder": "Jacobi", "BlockSize": 16 }</c>).
/// </summary>
public sealed record CllmChatClientOptions
{
    /// <summary>Folder of a Hugging Face model (config.json, safetensors, tokenizer). Required when the client loads the model itself.</summary>
    public string ModelPath { get; init; } = "";

    /// <summary>Jacobi by default: several tokens per forward pass, the same text as autoregressive decoding (greedy),
    /// or the same distribution (sampling). Lookahead adds an n-gram pool to Jacobi.</summary>
    public DecoderKind Decoder { get; init; } = DecoderKind.Jacobi;

    /// <summary>Jacobi block size n: tokens refined per pass.</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>How Jacobi fills a new block's guesses.</summary>
    public JacobiGuess InitialGuess { get; init; } = JacobiGuess.RandomFromContext;

    /// <summary>Lookahead's n-gram size N.</summary>
    public int NgramSize { get; init; } = GenerationOptions.DefaultNgramSize;

    /// <summary>Lookahead's n-grams per first token G.</summary>
    public int NgramsPerKey { get; init; } = GenerationOptions.DefaultNgramsPerKey;

    /// <summary>Lookahead keeps its n-gram pool across requests (see <see cref="EngineOptions.KeepNgramPool"/>).</summary>
    public bool KeepNgramPool { get; init; } = true;

    public string Device { get; init; } = "cpu";
    public ModelDType DType { get; init; } = ModelDType.Float32;

    /// <summary>Positions the KV cache holds (prompt + answer). Default: the model's maximum, at most 4096.</summary>
    public int? ContextLength { get; init; }

    /// <summary>TorchSharp intra-op threads (process-wide). Default: TorchSharp's own choice.</summary>
    public int? Threads { get; init; }

    /// <summary>Chat format name (cllm, chatml, llama2, llama3, vicuna, instruction). Default: detected from the model folder.</summary>
    public string? ChatFormat { get; init; }

    /// <summary>The id responses report. Default: the model folder's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Answer length when <c>ChatOptions.MaxOutputTokens</c> is not set. Default: until the context is full.</summary>
    public int? MaxOutputTokens { get; init; }

    public EngineOptions ToEngineOptions() => new()
    {
        Device = Device, DType = DType, ContextLength = ContextLength, Threads = Threads, KeepNgramPool = KeepNgramPool,
    };
}
