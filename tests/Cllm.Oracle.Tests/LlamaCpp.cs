using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using LLama.Sampling;

namespace Cllm.Oracle.Tests;

/// <summary>
/// A GGUF file run by llama.cpp (LLamaSharp's CPU backend) with the oracle settings: F32 KV cache, flash
/// attention off, logits of every position on request. Not thread-safe; one per test fixture.
/// </summary>
public sealed class LlamaCpp : IDisposable
{
    static readonly object NativeGate = new();
    static bool _configured;

    readonly LLamaWeights _weights;
    readonly LLamaContext _context;

    public LlamaCpp(string ggufPath, int contextSize = 512, int threads = 1)
    {
        ConfigureNative();
        var parameters = new ModelParams(ggufPath)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    /// <summary>Silences llama.cpp's loader chatter (errors still surface as exceptions).</summary>
    public static void ConfigureNative()
    {
        lock (NativeGate)
        {
            if (_configured) return;
            _configured = true;
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

    /// <summary>Greedy continuation (llama.cpp's greedy sampler), stopping after <paramref name="maxNew"/> tokens or at a stop id.</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int>? stopIds = null)
    {
        _context.NativeHandle.MemoryClear(true);
        using var sampler = new GreedySamplingPipeline();
        var batch = new LLamaBatch();
        for (var i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var output = new List<int>();
        var position = prompt.Count;
        while (output.Count < maxNew)
        {
            var token = (int)sampler.Sample(_context.NativeHandle, batch.TokenCount - 1);
            output.Add(token);
            if (stopIds is not null && stopIds.Contains(token)) break;
            if (output.Count == maxNew) break;
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
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode failed: {result}");
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
