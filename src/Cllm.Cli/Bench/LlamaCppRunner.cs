using System.Diagnostics;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LLama.Sampling;

namespace Cllm.Cli.Bench;

/// <summary>
/// A GGUF file run by llama.cpp (LLamaSharp's CPU backend) with the oracle settings: F32 KV cache, flash attention off,
/// one sequence, greedy sampling, logits of every position on request. <c>cllm bench --vs-llamacpp</c> times it as the
/// speed peer; the oracle tests compare the engine's logits, tokens and tokenization with it. Public only so that the
/// oracle test project (whose fixtures are public) can hold it; the CLI is a program, nothing else links it.
/// Not thread-safe.
/// </summary>
public sealed class LlamaCppRunner : IDisposable
{
    static readonly Lock NativeGate = new();
    static bool _nativeConfigured;

    readonly LLamaWeights _weights;
    readonly LLamaContext _context;
    readonly GreedySamplingPipeline _sampler = new();

    public LlamaCppRunner(string ggufPath, int contextSize = 512, int threads = 1)
    {
        ConfigureNative();
        var parameters = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextSize, BatchSize = (uint)contextSize, UBatchSize = (uint)contextSize,
            Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    /// <summary>Silences llama.cpp's loader chatter (errors still reach stderr, and fail as exceptions).</summary>
    static void ConfigureNative()
    {
        lock (NativeGate)
        {
            if (_nativeConfigured) return;
            _nativeConfigured = true;
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
                });
        }
    }

    public int VocabularySize => _context.Vocab.Count;

    public IReadOnlyDictionary<string, string> Metadata => _weights.Metadata;

    /// <summary>Logits [position][vocab] for every position of <paramref name="tokens"/>, from an empty cache.</summary>
    public float[][] Logits(IReadOnlyList<int> tokens)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Count; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, logits: true);
        Decode(batch);
        var result = new float[tokens.Count][];
        for (var i = 0; i < tokens.Count; i++) result[i] = _context.NativeHandle.GetLogitsIth(i).ToArray();
        return result;
    }

    /// <summary>
    /// Greedy continuation (llama.cpp's greedy sampler), stopping after <paramref name="maxNew"/> tokens or at a stop id.
    /// </summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int>? stopIds = null) =>
        Greedy(prompt, maxNew, stopIds, out _);

    /// <summary>
    /// Greedy continuation; <paramref name="prefillSeconds"/>: the time until the first token (the prompt's pass and its sampling).
    /// </summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int>? stopIds, out double prefillSeconds)
    {
        var clock = Stopwatch.StartNew();
        prefillSeconds = 0;
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var output = new List<int>();
        var position = prompt.Count;
        while (output.Count < maxNew)
        {
            var token = (int)_sampler.Sample(_context.NativeHandle, batch.TokenCount - 1);
            if (output.Count == 0) prefillSeconds = clock.Elapsed.TotalSeconds;
            output.Add(token);
            if ((stopIds is not null && stopIds.Contains(token)) || output.Count == maxNew) break;
            batch.Clear();
            batch.Add(token, position++, LLamaSeqId.Zero, logits: true);
            Decode(batch);
        }
        return output.ToArray();
    }

    /// <summary>llama.cpp's tokenization; <paramref name="special"/> parses control tokens written in the text.</summary>
    public int[] Tokenize(string text, bool addBos, bool special = true) =>
        _weights.Tokenize(text, addBos, special, Encoding.UTF8).Select(t => (int)t).ToArray();

    void Decode(LLamaBatch batch)
    {
        var result = _context.NativeHandle.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp's llama_decode failed: {result}.");
    }

    public void Dispose()
    {
        _sampler.Dispose();
        _context.Dispose();
        _weights.Dispose();
    }
}
