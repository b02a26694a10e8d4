using System.Text.Json.Nodes;
using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Text;

namespace Cllm.Oracle.Tests;

/// <summary>What the export writes (keys, tensors, F16) and what it refuses, with llama.cpp reading the files.</summary>
[Collection(OracleCollection.Name)]
public sealed class ExportTests(OracleModels models) : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("cllm-oracle-export-").FullName;

    [Fact]
    public void HyperParametersReachLlamaCppAsWritten()
    {
        var e = models.Get("gqa-tied");
        var c = e.Model.Config;
        var meta = e.LlamaCpp.Metadata;
        Assert.Equal("llama", meta["general.architecture"]);
        Assert.Equal("2", meta["llama.attention.head_count_kv"]);
        Assert.Equal("500000.000000", meta["llama.rope.freq_base"]);
        Assert.Equal(c.HeadDim.ToString(), meta["llama.rope.dimension_count"]);
        Assert.Equal("llama", meta["tokenizer.ggml.model"]);
        // Tied embeddings: no output tensor (token_embd, output_norm, 9 per layer).
        var (version, tensors, _) = GgufWriter.ReadHeader(e.Gguf);
        Assert.Equal(3u, version);
        Assert.Equal(2ul + 9ul * (ulong)c.NumLayers, tensors);

        var qwen = models.Get("qwen2-bias").LlamaCpp.Metadata;
        Assert.Equal("qwen2", qwen["general.architecture"]);
        Assert.Equal("gpt2", qwen["tokenizer.ggml.model"]);
        Assert.Equal("qwen2", qwen["tokenizer.ggml.pre"]);
        Assert.Equal("linear", models.Get("linear-rope").LlamaCpp.Metadata["llama.rope.scaling.type"]);
    }

    [Fact]
    public void Qwen3AndPhi3ReachLlamaCppAsTheirOwnArchitectures()
    {
        var qwen3 = models.Get("qwen3-qknorm");
        var meta = qwen3.LlamaCpp.Metadata;
        Assert.Equal("qwen3", meta["general.architecture"]);
        Assert.Equal("32", meta["qwen3.attention.key_length"]);
        // Tied: token_embd, output_norm and 11 per layer (q, k, v, their two norms, output, three FFN, two norms).
        Assert.Equal(2ul + 11ul * (ulong)qwen3.Model.Config.NumLayers, GgufWriter.ReadHeader(qwen3.Gguf).Tensors);

        var mini = models.Get("phi3-mini");
        Assert.Equal("phi3", mini.LlamaCpp.Metadata["general.architecture"]);
        Assert.False(mini.LlamaCpp.Metadata.ContainsKey("phi3.rope.scaling.attn_factor"));
        // llama.cpp's phi3 turns the sliding window off, so the file claims only the window (2047) as its context.
        Assert.Equal("2047", mini.LlamaCpp.Metadata["phi3.context_length"]);
        // Fused: token_embd, output_norm, output and 6 per layer (norm, attn_qkv, attn_output, norm, ffn_up, ffn_down).
        Assert.Equal(3ul + 6ul * (ulong)mini.Model.Config.NumLayers, GgufWriter.ReadHeader(mini.Gguf).Tensors);
        // Its vocabulary lacks <|endoftext|>, which llama.cpp looks up for models named "phi3": the name leaves it out.
        Assert.DoesNotContain("phi3", mini.LlamaCpp.Metadata["general.name"]);

        var longRope = models.Get("phi3-longrope");
        var scaling = longRope.Model.Config.RopeScaling!;
        meta = longRope.LlamaCpp.Metadata;
        Assert.Equal(scaling.OriginalMaxPositions.ToString(), meta["phi3.rope.scaling.original_context_length"]);
        var attention = double.Parse(meta["phi3.rope.scaling.attn_factor"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(scaling.AttentionFactor - attention) < 1e-5, $"attn_factor {attention}, config {scaling.AttentionFactor}");
        // Plus rope_factors_long and rope_factors_short.
        Assert.Equal(5ul + 6ul * (ulong)longRope.Model.Config.NumLayers, GgufWriter.ReadHeader(longRope.Gguf).Tensors);
    }

    [Fact]
    public void GemmaKeysAndTensorsReachLlamaCpp()
    {
        foreach (var shape in new[] { "gemma2", "gemma3" })
        {
            var e = models.Get(shape);
            var c = e.Model.Config;
            var meta = e.LlamaCpp.Metadata;
            Assert.Equal(shape, meta["general.architecture"]);
            Assert.Equal("8", meta[$"{shape}.attention.sliding_window"]);
            Assert.Equal("2", meta[$"{shape}.attention.sliding_window_pattern"]);
            Assert.Equal(c.MaxPositions.ToString(), meta[$"{shape}.context_length"]);
            // Tied: no output tensor. token_embd, output_norm; per layer 11 tensors (13 with Gemma 3's q/k norms).
            var names = GgufExport.Build(e.Model, GgufVocabulary.FromModelFolder(e.Directory, e.Tokenizer)).TensorNames.ToList();
            Assert.Equal(2 + (shape == "gemma3" ? 13 : 11) * c.NumLayers, names.Count);
            Assert.DoesNotContain("output.weight", names);
            Assert.Contains("blk.1.post_ffw_norm.weight", names);
            Assert.Equal(shape == "gemma3", names.Contains("blk.0.attn_k_norm.weight"));
        }
        Assert.Equal("50.000000", models.Get("gemma2").LlamaCpp.Metadata["gemma2.attn_logit_softcapping"]);
        Assert.Equal("20000.000000", models.Get("gemma3").LlamaCpp.Metadata["gemma3.rope.freq_base_swa"]);
    }

    [Fact]
    public void GemmaShapesLlamaCppCannotRunAreRefused()
    {
        var gemma2 = OracleModels.Config("gemma2");
        foreach (var (config, reason) in new[]
                 {
                     (gemma2 with { QueryPreAttnScalar = 48 }, "query_pre_attn_scalar"),
                     (gemma2 with { TieWordEmbeddings = false }, "untied"),
                     (gemma2 with { FinalLogitSoftcap = null }, "soft-caps"),
                     (OracleModels.Config("gemma3") with { AttnLogitSoftcap = 50 }, "no soft-capping"),
                 })
            Assert.Contains(reason, Assert.Throws<NotSupportedException>(() => GgufExport.Check(config)).Message);
    }

    [Fact]
    public void LlamaArchitectureIgnoresMistralsSlidingWindow()
    {
        // Why Mistral's window past its length is checked against a reference decoder instead: llama.cpp's llama
        // architecture reads no window and attends to every key. The file claims only the window as its context.
        var e = models.Get("mistral-window");
        Assert.Equal("8", e.LlamaCpp.Metadata["llama.context_length"]);
        var prompt = OracleModels.RandomPrompt(e.Model.Config.VocabSize, 40, 5);
        var theirs = e.LlamaCpp.Logits(prompt);
        using var windowless = new Transformer(e.Model.Config with { SlidingWindow = null });
        windowless.load_state_dict(e.Model.state_dict());
        static double Worst(float[][] a, float[][] b) => a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));
        Assert.True(Worst(theirs, LogitAgreementTests.OurLogits(windowless, prompt)) < 1e-4);
        Assert.True(Worst(theirs, LogitAgreementTests.OurLogits(e.Model, prompt)) > 0.1);
    }

    [Fact]
    public void F16ExportIsHalfTheSizeAndCloseToF32()
    {
        var e = models.Get("mha");
        var f16 = Path.Combine(_root, "mha-f16.gguf");
        GgufExport.ExportFolder(e.Directory, f16, GgufDType.F16);
        Assert.InRange(new FileInfo(f16).Length, new FileInfo(e.Gguf).Length * 0.45, new FileInfo(e.Gguf).Length * 0.55);
        using var llama = new LlamaCppRunner(f16);
        var prompt = OracleModels.RandomPrompt(e.Model.Config.VocabSize, 24, 7);
        var theirs = llama.Logits(prompt);
        var ours = LogitAgreementTests.OurLogits(e.Model, prompt);
        var worst = ours.Zip(theirs).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));
        Assert.True(worst < 0.1, $"F16 max |logit difference| {worst}");
        Assert.Equal(ours.Select(ArgMax), theirs.Select(ArgMax));
    }

    [Fact]
    public void BF16ExportHoldsTheSameBitsAsABFloat16ModelAndLlamaCppAgrees()
    {
        var e = models.Get("mha");
        var bf16 = Path.Combine(_root, "mha-bf16.gguf");
        GgufExport.ExportFolder(e.Directory, bf16, GgufDType.BF16);
        Assert.InRange(new FileInfo(bf16).Length, new FileInfo(e.Gguf).Length * 0.45, new FileInfo(e.Gguf).Length * 0.55);
        using var llama = new LlamaCppRunner(bf16);
        var prompt = OracleModels.RandomPrompt(e.Model.Config.VocabSize, 24, 8);
        var theirs = llama.Logits(prompt);
        var ours = LogitAgreementTests.OurLogits(e.Model, prompt);
        // bfloat16 keeps 8 bits of mantissa. The yardstick is Cllm's own bfloat16 model on the same weights: llama.cpp
        // on the BF16 file must stay as close to the float32 logits as it does (wrong bits would be far off).
        using var ourBf16 = ModelFiles.Load(e.Directory, TorchSharp.torch.ScalarType.BFloat16);
        var oursBf16 = LogitAgreementTests.OurLogits(ourBf16, prompt);
        static double Worst(float[][] a, float[][] b) => a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));
        var (llamaCpp, cllm) = (Worst(ours, theirs), Worst(ours, oursBf16));
        Assert.True(llamaCpp > 0, "a BF16 file must not be F32 in disguise");
        Assert.True(llamaCpp < 2 * cllm + 0.05, $"llama.cpp BF16 differs from float32 by {llamaCpp}, Cllm bfloat16 by {cllm}");
        var agree = ours.Select(ArgMax).Zip(theirs.Select(ArgMax)).Count(p => p.First == p.Second);
        Assert.True(agree >= prompt.Length - 2, $"argmax agrees at {agree} of {prompt.Length} positions");
    }

    [Fact]
    public void DynamicRopeScalingIsRefusedWithAReason()
    {
        var config = ModelConfig.Preset("tiny") with { MaxPositions = 64, RopeScaling = new RopeScaling("dynamic", 2) };
        var error = Assert.Throws<NotSupportedException>(() => GgufExport.Check(config));
        Assert.Contains("Dynamic NTK", error.Message);
        var dir = Path.Combine(_root, "dynamic");
        using (var model = new Transformer(config)) ModelFiles.Save(model, dir);
        BuiltInTokenizers.WriteSentencePiece4k(dir);
        var out_ = Path.Combine(_root, "dynamic.gguf");
        Assert.Throws<NotSupportedException>(() => GgufExport.ExportFolder(dir, out_));
        Assert.False(File.Exists(out_));
    }

    [Fact]
    public void ByteLevelBpeWithAnUnknownSplitRegexIsRefused()
    {
        var dir = Path.Combine(_root, "odd-bpe");
        OracleModels.CopyFixture("bpe", dir);
        var path = Path.Combine(dir, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        json["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = @"\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+";
        File.WriteAllText(path, json.ToJsonString());
        var error = Assert.Throws<NotSupportedException>(() => GgufVocabulary.FromModelFolder(dir, TextTokenizer.Load(dir)));
        Assert.Contains("pre-tokenizer", error.Message);
    }

    [Fact]
    public void ATokenizerLargerThanTheEmbeddingIsRefused()
    {
        var dir = Path.Combine(_root, "small-vocab");
        BuiltInTokenizers.WriteSentencePiece4k(dir);
        using var model = new Transformer(ModelConfig.Preset("tiny") with { VocabSize = 1000 });
        var error = Assert.Throws<NotSupportedException>(() =>
            GgufExport.Build(model, GgufVocabulary.FromModelFolder(dir, TextTokenizer.Load(dir))));
        Assert.Contains("4096 tokens", error.Message);
    }

    static int ArgMax(float[] row)
    {
        var best = 0;
        for (var i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
