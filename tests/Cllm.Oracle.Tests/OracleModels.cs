using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Native;
using Cllm.Text;
using Cllm.Tests.Model;

[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

namespace Cllm.Oracle.Tests;

/// <summary>
/// Random-initialised models of the shapes llama.cpp must agree with, each saved as a Hugging Face folder with a
/// real tokenizer, exported to GGUF through <see cref="GgufExport.ExportFolder"/> and opened in llama.cpp.
/// Built once per test run, on first use.
/// </summary>
public sealed class OracleModels : IDisposable
{
    /// <summary>Large enough that logits are peaked and argmax ties are vanishingly rare (as in the runtime tests).</summary>
    public const double InitStd = 0.25;

    public static readonly string[] Shapes =
    [
        "mha", "gqa-tied", "linear-rope", "llama3-rope", "mistral-wide-head", "llama-bias", "qwen2-bias", "qwen3-qknorm",
        "phi3-mini", "phi3-longrope", "gemma2", "gemma3",
    ];

    readonly string _root = Directory.CreateTempSubdirectory("cllm-oracle-").FullName;
    readonly Dictionary<string, Entry> _entries = [];

    public sealed record Entry(string Shape, string Directory, string Gguf, Transformer Model, TextTokenizer Tokenizer, LlamaCppRunner LlamaCpp);

    public static ModelConfig Config(string shape) => shape switch
    {
        // Untied MHA, rope theta 10000, the built-in 4k SentencePiece vocabulary.
        "mha" => ModelConfig.Preset("tiny"),
        // GQA (2 query heads per KV head), tied embeddings, theta 500000.
        "gqa-tied" => ModelConfig.Preset("tiny-gqa"),
        "linear-rope" => ModelConfig.Preset("tiny") with { NumKvHeads = 2, RopeTheta = 20000, RopeScaling = new RopeScaling("linear", 4) },
        "llama3-rope" => ModelConfig.Preset("tiny") with
        {
            HeadDim = 32, NumHeads = 2, NumKvHeads = 1, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, OriginalMaxPositions: 64),
        },
        // Mistral with a sliding window and head_dim != hidden / heads (as Mistral-Nemo).
        "mistral-wide-head" => ModelConfig.Preset("tiny") with
        {
            Architecture = "MistralForCausalLM", NumHeads = 4, NumKvHeads = 2, HeadDim = 32, SlidingWindow = 1024, RmsNormEps = 1e-6,
        },
        // Not in Shapes (llama.cpp ignores the window): ExportTests shows that it does.
        "mistral-window" => ModelConfig.Preset("tiny") with { Architecture = "MistralForCausalLM", NumKvHeads = 2, SlidingWindow = 8 },
        "llama-bias" => ModelConfig.Preset("tiny") with { AttentionBias = true, NumKvHeads = 2 },
        // Qwen2: q/k/v biases, theta 1e6, tied embeddings (as Qwen2-0.5B), byte-level BPE (the Qwen2-style fixture, 859 tokens).
        "qwen2-bias" => ModelConfig.Preset("tiny-qwen2") with
        {
            VocabSize = 859, TieWordEmbeddings = true, BosTokenId = null, EosTokenIds = [858, 856],
        },
        // Qwen3: q/k RMSNorm per head, head_dim 32 where hidden / heads is 16 (as Qwen3-0.6B: 128 vs 64), tied, no biases.
        "qwen3-qknorm" => ModelConfig.Preset("tiny") with
        {
            Architecture = "Qwen3ForCausalLM", NumKvHeads = 2, HeadDim = 32, TieWordEmbeddings = true, RopeTheta = 1000000, RmsNormEps = 1e-6,
        },
        // Phi-3 mini 4k: no rope_scaling, a sliding window of 2047 (llama.cpp's phi3 ignores it; the oracle's prompts stay
        // within it, and the export claims only the window as its context).
        "phi3-mini" => ModelConfig.Preset("tiny") with { Architecture = "Phi3ForCausalLM", MaxPositions = 4096, SlidingWindow = 2047 },
        // Phi-3.5-style longrope with original length 1024: contexts of up to 1024 (the oracle's 512) take the short
        // factors; LongRopeTests opens a 2048-position context for the long ones.
        "phi3-longrope" => ModelConfig.Preset("tiny") with
        {
            Architecture = "Phi3ForCausalLM", NumKvHeads = 2, MaxPositions = 4096, RopeScaling = LongRopeScaling.Create(headDim: 16, original: 1024, max: 4096),
        },
        // Gemma 2: sliding window 8 on even layers (prompts run past it), soft-capped scores and logits, explicit head_dim.
        "gemma2" => Gemma("Gemma2ForCausalLM") with { AttnLogitSoftcap = 50, FinalLogitSoftcap = 30, RopeTheta = 10000 },
        // Gemma 3: q/k norms, theta 1e6 and linear scaling on the global layers, a local RoPE base on the window layers
        // (20000, not the 10000 llama.cpp assumes when rope.freq_base_swa is absent, so the key is checked).
        "gemma3" => Gemma("Gemma3ForCausalLM") with { RopeTheta = 1_000_000, RopeLocalTheta = 20000, RopeScaling = new RopeScaling("linear", 8) },
        _ => throw new ArgumentException(shape),
    };

    // llama.cpp scales queries by 1/sqrt(head_dim) (it reads no query_pre_attn_scalar), so the scalar is head_dim here.
    static ModelConfig Gemma(string architecture) => ModelConfig.Preset("tiny") with
    {
        Architecture = architecture, NumHeads = 4, NumKvHeads = 2, HeadDim = 32, QueryPreAttnScalar = 32, TieWordEmbeddings = true,
        RmsNormEps = 1e-6, SlidingWindow = 8, SlidingWindowPattern = 2,
    };

    public Entry Get(string shape)
    {
        lock (_entries)
        {
            if (_entries.TryGetValue(shape, out var entry)) return entry;
            TorchNative.EnsureLoaded();
            // Test-sized models gain nothing from threads, and spinning thread pools crawl on a busy machine.
            TorchSharp.torch.set_num_threads(1);
            var dir = Path.Combine(_root, shape);
            var config = Config(shape);
            using (var random = new Transformer(config))
            {
                random.InitializeRandom(Seed(shape), InitStd);
                ModelFiles.Save(random, dir);
            }
            if (shape == "qwen2-bias") CopyFixture("bpe", dir);
            else BuiltInTokenizers.WriteSentencePiece4k(dir);
            var gguf = Path.Combine(_root, shape + ".gguf");
            GgufExport.ExportFolder(dir, gguf);
            var model = ModelFiles.Load(dir);
            entry = new Entry(shape, dir, gguf, model, TextTokenizer.Load(dir), new LlamaCppRunner(gguf));
            _entries[shape] = entry;
            return entry;
        }
    }

    /// <summary>Each shape keeps the seed it was measured with (its place in the list when it was added), so adding a
    /// shape never changes another's weights: Gemma's llama.cpp agreement is limited by float16 GELU flips whose size
    /// depends on the weights (GemmaOracleTests), and its thresholds and the README's numbers are for these.</summary>
    static long Seed(string shape) => shape switch
    {
        "gemma2" => 1007,
        "gemma3" => 1008,
        _ => 1000 + Array.IndexOf(Shapes, shape),
    };

    public static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static void CopyFixture(string name, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(FixturePath(name), "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(FixturePath(name), file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
    }

    /// <summary>The repository root (where Cllm.sln is), for the trained default model and its data.</summary>
    public static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Cllm.sln"))) return dir.FullName;
        return null;
    }

    public static int[] RandomPrompt(int vocab, int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(3, vocab)).ToArray();
    }

    public void Dispose()
    {
        foreach (var e in _entries.Values)
        {
            e.LlamaCpp.Dispose();
            e.Model.Dispose();
        }
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class OracleCollection : ICollectionFixture<OracleModels>
{
    public const string Name = "llama.cpp oracle";
}
