using Cllm.Checkpoints;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Native;
using Cllm.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm;

public enum ModelDType { Float32, BFloat16, Float16 }

/// <summary>How to place a model. Validated when the engine is made.</summary>
public sealed record EngineOptions
{
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Float32 is the exact reference; BFloat16 makes multi-token passes much cheaper on CPUs with AMX.</summary>
    public ModelDType DType { get; init; } = ModelDType.Float32;
    /// <summary>Positions the KV cache holds (prompt + output). Default: the model's maximum, at most 4096.</summary>
    public int? ContextLength { get; init; }
    /// <summary>Threads a pass uses (process-wide): libtorch's intra-op threads and the CPU kernels' (Model/Kernels).
    /// Default: TorchSharp's own choice and one kernel thread per processor.</summary>
    public int? Threads { get; init; }
    /// <summary>Lookahead keeps its n-gram pool from request to request, so later requests reuse the text of earlier
    /// ones as drafts (outputs are unchanged; only speed differs). Set false when requests come from users who must
    /// not learn anything about each other: a request's speed (and its pooled-token count) shows whether its text
    /// followed text another request wrote. False starts each request from its own prompt.</summary>
    public bool KeepNgramPool { get; init; } = true;
}

/// <summary>
/// A loaded model, its tokenizer and one KV cache: the object applications hold. Requests run one at a
/// time (callers queue on a semaphore); each streams one <see cref="TokenChunk"/> per forward pass.
/// </summary>
public sealed class CllmEngine : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly KvCache _cache;
    readonly bool _ownsModel;
    /// <summary>Chooses Jacobi and lookahead block sizes for requests that leave BlockSize unset; calibrated on the first such request.</summary>
    public BlockSizer BlockSizer { get; } = new();

    NgramPool? _pool; // lookahead's, kept across requests (used under _gate; ClearNgramPool just drops it)
    bool _disposed;

    public CllmEngine(Transformer model, TextTokenizer tokenizer, EngineOptions? options = null, bool ownsModel = false)
    {
        TorchNative.EnsureLoaded();
        Options = options ?? new EngineOptions();
        Model = model;
        Tokenizer = tokenizer;
        _ownsModel = ownsModel;
        if (Options.Threads is { } threads)
        {
            if (threads <= 0) throw new ArgumentOutOfRangeException(nameof(options), threads, "Threads must be positive.");
            set_num_threads(threads);
            LinearKernel.Threads = threads;
        }
        var max = model.MaxPositions;
        var context = Options.ContextLength ?? Math.Min(max, 4096);
        if (context < 2 || context > max)
            throw new ArgumentOutOfRangeException(nameof(options), context,
                $"ContextLength must be between 2 and the {max} positions the model addresses.");
        if (model.Config.SlidingWindow is { } window && context > window)
            throw new ArgumentOutOfRangeException(nameof(options), context,
                $"ContextLength {context} exceeds the model's sliding window ({window}); attention past it is not implemented.");
        _cache = new KvCache(model.Config, context, model.DType, model.Device);
    }

    /// <summary>Loads a Hugging Face model folder (config.json, safetensors weights, tokenizer files).</summary>
    public static CllmEngine Load(string modelDirectory, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        var device = ParseDevice(options.Device);
        var tokenizer = TextTokenizer.Load(modelDirectory);
        var model = ModelFiles.Load(modelDirectory, ToScalarType(options.DType), device);
        try
        {
            ModelFolderCheck.TokenizerFitsModel(tokenizer, model.Config, modelDirectory);
            return new CllmEngine(model, tokenizer, options, ownsModel: true) { ModelDirectory = modelDirectory };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public EngineOptions Options { get; }
    public Transformer Model { get; }
    public TextTokenizer Tokenizer { get; }
    public ModelConfig Config => Model.Config;
    public string? ModelDirectory { get; private init; }
    public int ContextLength => _cache.Capacity;

    /// <summary>Forgets lookahead's n-grams (for example between users who should not share drafts, or to measure
    /// a cold start). Safe at any time, also while a request runs: that request keeps its pool, the next starts empty.</summary>
    public void ClearNgramPool() => Volatile.Write(ref _pool, null);

    /// <summary>EOS ids from config.json, else from the tokenizer.</summary>
    public IReadOnlyCollection<int> EosIds => Config.EosTokenIds.Count > 0 ? Config.EosTokenIds : Tokenizer.EosIds;

    /// <summary>
    /// Generates after <paramref name="prompt"/>, one chunk per forward pass. The request waits for earlier
    /// ones to finish; it holds the engine until enumeration ends or the enumerator is disposed.
    /// </summary>
    public IEnumerable<TokenChunk> Generate(IReadOnlyList<int> prompt, GenerationOptions? options = null,
        DecodingStats? stats = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        options = (options ?? new GenerationOptions()).Validate();
        stats ??= new DecodingStats();
        return Locked(prompt, options, stats, cancellationToken);
    }

    IEnumerable<TokenChunk> Locked(IReadOnlyList<int> prompt, GenerationOptions options, DecodingStats stats, CancellationToken cancellationToken)
    {
        _gate.Wait(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            NgramPool? pool = null;
            if (options.Decoder == DecoderKind.Lookahead && Options.KeepNgramPool)
            {
                pool = Volatile.Read(ref _pool);
                if (pool is null || pool.N != options.NgramSize || pool.PerKey != options.NgramsPerKey)
                    Volatile.Write(ref _pool, pool = new NgramPool(options.NgramSize, options.NgramsPerKey));
            }
            foreach (var chunk in Decoder.Generate(Model, _cache, prompt, options, stats, EosIds, cancellationToken, pool, BlockSizer))
                yield return chunk;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Encodes <paramref name="prompt"/> (with BOS where the model wants it), generates and decodes.</summary>
    public (string Text, int[] Tokens, DecodingStats Stats) GenerateText(string prompt, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var stats = new DecodingStats();
        var tokens = Generate(Tokenizer.Encode(prompt), options, stats, cancellationToken).SelectMany(c => c.Tokens).ToArray();
        return (Tokenizer.Decode(tokens, skipSpecial: true), tokens, stats);
    }

    public static Device ParseDevice(string device)
    {
        TorchNative.EnsureLoaded();
        if (device.Equals("cpu", StringComparison.OrdinalIgnoreCase)) return CPU;
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            if (!cuda.is_available())
                throw new NotSupportedException(
                    $"Device '{device}' was asked for but TorchSharp sees no CUDA device. This build uses TorchSharp-cpu; " +
                    "build with -p:CllmCuda=true (needs TorchSharp-cuda-linux from your NuGet feed) on a machine with an NVIDIA GPU, or use 'cpu'.");
            return torch.device(device.ToLowerInvariant());
        }
        throw new ArgumentException($"Unknown device '{device}'; use 'cpu', 'cuda' or 'cuda:N'.", nameof(device));
    }

    public static ScalarType ToScalarType(ModelDType dtype) => dtype switch
    {
        ModelDType.BFloat16 => ScalarType.BFloat16,
        ModelDType.Float16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    public void Dispose()
    {
        if (_disposed) return;
        _gate.Wait();
        try
        {
            _disposed = true;
            _cache.Dispose();
            if (_ownsModel) Model.Dispose();
        }
        finally
        {
            _gate.Release();
        }
    }
}
