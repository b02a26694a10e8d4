using Cllm.Decoding;
using Cllm.Model;
using Cllm.Native;
using Cllm.Tests.Model;
using static TorchSharp.torch;

namespace Cllm.Tests;

/// <summary>Random-initialised models of every shape the engine supports, small enough for unit tests.</summary>
static class TestModels
{
    /// <summary>Init scale for test models: large enough that logits are peaked and argmax ties (which float
    /// rounding could flip) are vanishingly rare, small enough that outputs are varied, not one repeated token.</summary>
    public const double InitStd = 0.25;

    public static readonly string[] Shapes =
    [
        "mha", "gqa-tied", "qwen2-bias", "linear-rope", "llama3-rope", "dynamic-rope", "qwen3-qknorm", "phi3-longrope",
        "mistral-window", "gemma2", "gemma3",
    ];

    public static ModelConfig Config(string shape) => shape switch
    {
        "mha" => ModelConfig.Preset("tiny") with { VocabSize = 512 },
        "gqa-tied" => ModelConfig.Preset("tiny-gqa") with { VocabSize = 512 },
        "qwen2-bias" => ModelConfig.Preset("tiny-qwen2") with { VocabSize = 512 },
        "linear-rope" => ModelConfig.Preset("tiny") with
        {
            VocabSize = 512, NumKvHeads = 2, RopeTheta = 20000, RopeScaling = new RopeScaling("linear", 4),
        },
        "llama3-rope" => ModelConfig.Preset("tiny") with
        {
            VocabSize = 512, HeadDim = 32, NumHeads = 2, NumKvHeads = 1, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, OriginalMaxPositions: 64),
        },
        "dynamic-rope" => ModelConfig.Preset("tiny") with
        {
            VocabSize = 512, MaxPositions = 64, RopeScaling = new RopeScaling("dynamic", 2),
        },
        // Qwen3: q/k norms, head_dim (32) wider than hidden / heads (16), tied embeddings, no biases.
        "qwen3-qknorm" => ModelConfig.Preset("tiny") with
        {
            Architecture = "Qwen3ForCausalLM", VocabSize = 512, NumKvHeads = 2, HeadDim = 32, TieWordEmbeddings = true,
            RopeTheta = 1000000, RmsNormEps = 1e-6,
        },
        // Phi-3 with longrope: caches longer than 64 positions rotate by the long factors, shorter ones by the short.
        "phi3-longrope" => ModelConfig.Preset("tiny") with
        {
            Architecture = "Phi3ForCausalLM", VocabSize = 512, MaxPositions = 256, RopeScaling = LongRopeScaling.Create(headDim: 16, original: 64, max: 256),
        },
        // Phi-3 with a window (as Phi-3-mini-4k's 2047) far shorter than the sliding-window tests' prompts; not in Shapes.
        "phi3-window" => Config("phi3-longrope") with { RopeScaling = null, SlidingWindow = 8 },
        // A sliding window far shorter than the tests' sequences, so attention past it is exercised.
        "mistral-window" => ModelConfig.Preset("tiny") with
        {
            Architecture = "MistralForCausalLM", VocabSize = 512, NumKvHeads = 2, SlidingWindow = 8, RmsNormEps = 1e-6,
        },
        // Gemma 2 and 3: alternating sliding-window (8) and global layers, explicit head_dim, GQA, tied embeddings.
        "gemma2" => Gemma("Gemma2ForCausalLM") with
        {
            SlidingWindowPattern = 2, RopeTheta = 10000, QueryPreAttnScalar = 32, AttnLogitSoftcap = 50, FinalLogitSoftcap = 30,
        },
        // Gemma 3: q/k norms, a local RoPE base for the window layers, linear rope_scaling on the global ones only; a
        // pattern of 2 (real models: 6) so the two layers hold both kinds; query_pre_attn_scalar != head_dim.
        "gemma3" => Gemma("Gemma3ForCausalLM") with
        {
            SlidingWindowPattern = 2, RopeTheta = 1_000_000, RopeLocalTheta = 10000, RopeScaling = new RopeScaling("linear", 8),
            QueryPreAttnScalar = 24,
        },
        _ => throw new ArgumentException(shape),
    };

    static ModelConfig Gemma(string architecture) => ModelConfig.Preset("tiny") with
    {
        Architecture = architecture, VocabSize = 512, NumHeads = 4, NumKvHeads = 2, HeadDim = 32, TieWordEmbeddings = true,
        RmsNormEps = 1e-6, SlidingWindow = 8,
    };

    public static Transformer Create(string shape, long seed, ScalarType dtype = ScalarType.Float32)
    {
        TorchNative.EnsureLoaded();
        var model = new Transformer(Config(shape), dtype);
        model.InitializeRandom(seed, InitStd);
        model.eval();
        return model;
    }

    public static int[] RandomPrompt(int vocab, int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(3, vocab)).ToArray();
    }

    /// <summary>Every token a request generates (no stop ids), with its stats.</summary>
    public static int[] Generate(Transformer model, KvCache cache, int[] prompt, GenerationOptions options, out DecodingStats stats)
    {
        stats = new DecodingStats();
        return Decoder.Generate(model, cache, prompt, options, stats, []).SelectMany(c => c.Tokens).ToArray();
    }
}
