using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
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
    /// <summary>Positions the KV cache holds (prompt + output). Default: the model's maximum, at most 4096 (a sliding
    /// window does not limit it: window layers attend to the keys within it). With longrope (Phi-3.5) it also picks
    /// the RoPE factors: the long ones when it exceeds original_max_position_embeddings.</summary>
    public int? ContextLength { get; init; }
    /// <summary>Threads a pass uses (process-wide): libtorch's intra-op threads and the CPU kernels' (Model/Kernels).
    /// Default: TorchSharp's own choice and one kernel thread per processor.</summary>
    public int? Threads { get; init; }
    /// <summary>Lookahead keeps its n-gram pools from request to request, so later requests reuse the text of earlier
    /// ones as drafts (outputs are unchanged; only speed differs). Which requests share a pool is
    /// <see cref="GenerationOptions.NgramPoolKey"/>: a request's speed (and its pooled-token count) shows whether its
    /// text followed text another request with the same key wrote. False starts every request from its own prompt.</summary>
    public bool KeepNgramPool { get; init; } = true;
    /// <summary>Kept n-gram pools at most (one per <see cref="GenerationOptions.NgramPoolKey"/>); the least recently
    /// used is dropped beyond it.</summary>
    public int MaxNgramPools { get; init; } = 256;
    /// <summary>How long a request may wait for the engine (requests run one at a time) before it fails with a
    /// <see cref="TimeoutException"/>. Default: as long as it takes (its cancellation token still ends the wait).</summary>
    public TimeSpan? QueueTimeout { get; init; }
}

/// <summary>
/// A loaded model, its tokenizer and one KV cache: the object applications hold, and the one way to generate.
/// Requests run one at a time, in order, on the engine's own thread (TorchSharp's dispose scopes are
/// thread-static, so all tensor work stays on one thread whatever thread the caller awaits on); each streams
/// one <see cref="TokenChunk"/> per forward pass. Cancelling a request, abandoning its enumerator or disposing
/// the engine ends generation after the current pass.
/// </summary>
public sealed class CllmEngine : IDisposable
{
    readonly KvCache _cache;
    readonly bool _ownsModel;
    /// <summary>Chooses Jacobi and lookahead block sizes for requests that leave BlockSize unset; calibrated on the first such request.</summary>
    public BlockSizer BlockSizer { get; } = new();

    readonly BlockingCollection<Job> _queue = new();
    readonly CancellationTokenSource _shutdown = new();
    readonly Dictionary<string, (NgramPool Pool, long LastUse)> _pools = new(StringComparer.Ordinal); // under its own lock
    readonly Lock _lock = new();
    Thread? _worker;
    long _useCounter;
    volatile bool _disposed;

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
        if (Options.MaxNgramPools < 1)
            throw new ArgumentOutOfRangeException(nameof(options), Options.MaxNgramPools, "MaxNgramPools must be at least 1.");
        if (Options.QueueTimeout is { } wait && wait <= TimeSpan.Zero && wait != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(options), wait, "QueueTimeout must be positive (or null to wait as long as it takes).");
        var max = model.MaxPositions;
        var context = Options.ContextLength ?? Math.Min(max, 4096);
        if (context < 2 || context > max)
            throw new ArgumentOutOfRangeException(nameof(options), context,
                $"ContextLength must be between 2 and the {max} positions the model addresses.");
        _cache = new KvCache(model.Config, context, model.DType, model.Device);
    }

    /// <summary>Loads a Hugging Face model folder (config.json, safetensors weights, tokenizer files).</summary>
    public static CllmEngine Load(string modelDirectory, EngineOptions? options = null) => Load(modelDirectory, options, null);

    /// <summary><see cref="Load(string, EngineOptions?)"/>, calling <paramref name="stepDone"/> with the name of each
    /// loading step as it ends (how <c>cllm generate --timings</c> splits the time to the first token).</summary>
    internal static CllmEngine Load(string modelDirectory, EngineOptions? options, Action<string>? stepDone)
    {
        options ??= new EngineOptions();
        var device = ParseDevice(options.Device); // loads TorchSharp's natives first
        stepDone?.Invoke("TorchSharp natives");
        var tokenizer = TextTokenizer.Load(modelDirectory);
        stepDone?.Invoke("tokenizer");
        var model = ModelFiles.Load(modelDirectory, ToScalarType(options.DType), device);
        stepDone?.Invoke("config and weights");
        try
        {
            ModelFolderCheck.TokenizerFitsModel(tokenizer, model.Config, modelDirectory);
            var engine = new CllmEngine(model, tokenizer, options, ownsModel: true) { ModelDirectory = modelDirectory };
            stepDone?.Invoke("engine (KV cache)");
            return engine;
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

    /// <summary>Forgets every kept n-gram pool (for example to measure a cold start). Safe at any time, also while a
    /// request runs: that request keeps its pool, the next starts empty.</summary>
    public void ClearNgramPool()
    {
        lock (_lock) _pools.Clear();
    }

    /// <summary>Forgets the n-gram pool of one <see cref="GenerationOptions.NgramPoolKey"/> (null: the engine-wide one).</summary>
    public void ClearNgramPool(string? key)
    {
        lock (_lock) _pools.Remove(key ?? "");
    }

    /// <summary>EOS ids from config.json, else from the tokenizer.</summary>
    public IReadOnlyCollection<int> EosIds => Config.EosTokenIds.Count > 0 ? Config.EosTokenIds : Tokenizer.EosIds;

    /// <summary>
    /// Generates after <paramref name="prompt"/>, one chunk per forward pass, on the engine's thread. The request
    /// waits for earlier ones (up to <see cref="EngineOptions.QueueTimeout"/>); cancelling
    /// <paramref name="cancellationToken"/> or disposing the enumerator ends it after the current pass and frees
    /// the engine for the next request. <paramref name="stats"/> is complete when enumeration has ended.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Invalid <paramref name="options"/> (thrown here, before any wait).</exception>
    public IAsyncEnumerable<TokenChunk> GenerateAsync(IReadOnlyList<int> prompt, GenerationOptions? options = null,
        DecodingStats? stats = null, CancellationToken cancellationToken = default)
    {
        var job = Enqueue(prompt, options, stats, cancellationToken);
        return ReadAsync(job, cancellationToken);
    }

    /// <summary>
    /// <see cref="GenerateAsync"/> for synchronous callers: blocks the calling thread while the engine's thread
    /// generates. Disposing the enumerator early (or abandoning it to the garbage collector) does not hold the engine.
    /// </summary>
    public IEnumerable<TokenChunk> Generate(IReadOnlyList<int> prompt, GenerationOptions? options = null,
        DecodingStats? stats = null, CancellationToken cancellationToken = default)
    {
        var job = Enqueue(prompt, options, stats, cancellationToken);
        return Read(job, cancellationToken);
    }

    /// <summary>A request: what to generate, where its chunks go, and the token that ends it.</summary>
    sealed class Job(IReadOnlyList<int> prompt, GenerationOptions options, DecodingStats stats, CancellationTokenSource cancel)
    {
        public IReadOnlyList<int> Prompt { get; } = prompt;
        public GenerationOptions Options { get; } = options;
        public DecodingStats Stats { get; } = stats;
        public CancellationTokenSource Cancel { get; } = cancel;
        public CancellationToken Token { get; } = cancel.Token; // readable after the consumer disposed Cancel
        public Channel<TokenChunk> Output { get; } =
            Channel.CreateUnbounded<TokenChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        /// <summary>Set when the engine's thread is done with the request (its stats are final).</summary>
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    Job Enqueue(IReadOnlyList<int> prompt, GenerationOptions? options, DecodingStats? stats, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ObjectDisposedException.ThrowIf(_disposed, this);
        options = (options ?? new GenerationOptions()).Validate();
        var job = new Job([.. prompt], options, stats ?? new DecodingStats(),
            CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token));
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _worker ??= StartWorker();
            _queue.Add(job);
        }

        return job;
    }

    async IAsyncEnumerable<TokenChunk> ReadAsync(Job job, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        try
        {
            await WaitStartedAsync(job, cancellationToken).ConfigureAwait(false);
            await foreach (var chunk in job.Output.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested(); // passes already made are not shown after a cancel
                yield return chunk;
            }
        }
        finally
        {
            End(job); // a consumer that stops early ends generation after this pass
            // A request that ran finishes its pass first, so its stats are final; a queued one is skipped unwaited.
            if (job.Started.Task.IsCompleted) await job.Done.Task.ConfigureAwait(false);
        }
    }

    IEnumerable<TokenChunk> Read(Job job, CancellationToken cancellationToken)
    {
        try
        {
            WaitStartedAsync(job, cancellationToken).GetAwaiter().GetResult();
            var reader = job.Output.Reader;
            while (reader.WaitToReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult())
            {
                while (reader.TryRead(out var chunk))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    yield return chunk;
                }
            }
        }
        finally
        {
            End(job);
            if (job.Started.Task.IsCompleted) job.Done.Task.Wait();
        }
    }

    static void End(Job job)
    {
        job.Cancel.Cancel();
        job.Cancel.Dispose(); // unlinks from the caller's token, which may live much longer
    }

    async Task WaitStartedAsync(Job job, CancellationToken cancellationToken)
    {
        var timeout = Options.QueueTimeout ?? Timeout.InfiniteTimeSpan;
        try
        {
            await job.Started.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException(
                $"The request waited {timeout.TotalSeconds:0.###} s for the engine, which runs one request at a time " +
                "(EngineOptions.QueueTimeout); retry later or raise the time-out.");
        }
    }

    Thread StartWorker()
    {
        var thread = new Thread(Work) { IsBackground = true, Name = "Cllm engine" };
        thread.Start();
        return thread;
    }

    // The engine's thread: every forward pass of every request runs here.
    void Work()
    {
        foreach (var job in _queue.GetConsumingEnumerable())
        {
            try
            {
                Run(job);
            }
            finally
            {
                job.Done.TrySetResult();
            }
        }
    }

    void Run(Job job)
    {
        var output = job.Output.Writer;
        if (_shutdown.IsCancellationRequested)
        {
            output.TryComplete(new ObjectDisposedException(nameof(CllmEngine), "The engine was disposed before the request ran."));
            job.Started.TrySetResult();
            return;
        }

        job.Started.TrySetResult();
        if (job.Token.IsCancellationRequested)
        {
            output.TryComplete(new OperationCanceledException(job.Token));
            return;
        }

        try
        {
            var pool = PoolFor(job.Options);
            foreach (var chunk in Decoder.Generate(Model, _cache, job.Prompt, job.Options, job.Stats, EosIds, job.Token, pool, BlockSizer))
                output.TryWrite(chunk);
            output.TryComplete(_shutdown.IsCancellationRequested
                ? new ObjectDisposedException(nameof(CllmEngine), "The engine was disposed during the request.")
                : null);
        }
        catch (Exception e)
        {
            output.TryComplete(e);
        }
    }

    NgramPool? PoolFor(GenerationOptions options)
    {
        if (options.Decoder != DecoderKind.Lookahead || !Options.KeepNgramPool) return null;
        string key = options.NgramPoolKey ?? "";
        lock (_lock)
        {
            long use = ++_useCounter;
            if (_pools.TryGetValue(key, out var entry) && entry.Pool.N == options.NgramSize && entry.Pool.PerKey == options.NgramsPerKey)
            {
                _pools[key] = (entry.Pool, use);
                return entry.Pool;
            }

            var pool = new NgramPool(options.NgramSize, options.NgramsPerKey);
            _pools[key] = (pool, use);
            if (_pools.Count > Options.MaxNgramPools)
                _pools.Remove(_pools.MinBy(kv => kv.Value.LastUse).Key);
            return pool;
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

    /// <summary>
    /// Cancels the running request (it ends after its current forward pass) and every queued one, waits for the
    /// engine's thread, then frees the cache (and the model when the engine loaded it). Requests cut off this way
    /// end with an <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        Thread? worker;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            worker = _worker;
            _queue.CompleteAdding();
        }

        _shutdown.Cancel();
        if (worker is not null && worker != Thread.CurrentThread) worker.Join();
        _cache.Dispose();
        if (_ownsModel) Model.Dispose();
        _queue.Dispose();
        _shutdown.Dispose();
    }
}
