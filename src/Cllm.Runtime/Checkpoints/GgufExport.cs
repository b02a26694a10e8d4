using System.Runtime.InteropServices;
using Cllm.Model;
using Cllm.Text;
using static TorchSharp.torch;

namespace Cllm.Checkpoints;

/// <summary>Tensor precision of an exported GGUF file (norms, biases and RoPE factors always stay F32).</summary>
public enum GgufDType
{
    F32,
    F16,
    /// <summary>bfloat16: the same bits as a bfloat16 checkpoint, so llama.cpp and Cllm run the very same weights.</summary>
    BF16,
}

/// <summary>
/// Exports a loaded model and its tokenizer as a GGUF v3 file that llama.cpp runs: Llama and Mistral as the
/// "llama" architecture (Q/K rows permuted from Hugging Face's half-split RoPE layout to llama.cpp's
/// interleaved one, biases included when the model has them), Qwen2 as "qwen2" (NeoX RoPE: no permutation;
/// q/k/v biases), Qwen3 as "qwen3" (NeoX RoPE, q/k norms as attn_q_norm/attn_k_norm), Phi-3 as "phi3" (NeoX
/// RoPE, fused attn_qkv, ffn_up holding gate then up; longrope as rope_factors_short/long tensors, the
/// original length and the attention factor), tied embeddings by leaving out <c>output</c>, linear RoPE scaling
/// as llama.cpp's linear scaling and llama3 RoPE scaling as a <c>rope_freqs</c> tensor of per-frequency divisors.
/// Gemma 2 and Gemma 3 as "gemma2" / "gemma3" (NeoX RoPE; norm weights written as 1 + w, the scale llama.cpp
/// multiplies by, as convert_hf_to_gguf.py writes them; soft-caps, sliding window and its layer period, Gemma 3's
/// local RoPE base).
/// What llama.cpp cannot represent (dynamic NTK scaling as this engine does it) is refused with
/// <see cref="NotSupportedException"/>.
/// </summary>
public static class GgufExport
{
    /// <summary>Loads the model folder (float32) and its tokenizer and writes <paramref name="outputPath"/>.</summary>
    public static void ExportFolder(string modelDirectory, string outputPath, GgufDType dtype = GgufDType.F32)
    {
        var config = ModelConfig.Load(Path.Combine(modelDirectory, ModelFiles.ConfigFile));
        Check(config); // before the weights are read
        var tokenizer = TextTokenizer.Load(modelDirectory);
        var vocabulary = GgufVocabulary.FromModelFolder(modelDirectory, tokenizer);
        using var model = ModelFiles.Load(modelDirectory);
        Export(model, vocabulary, outputPath, dtype, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDirectory))));
    }

    /// <summary>The llama.cpp architecture a model is exported as; throws <see cref="NotSupportedException"/> naming what is not representable.</summary>
    public static string Check(ModelConfig config)
    {
        var arch = config.Architecture switch
        {
            "LlamaForCausalLM" or "MistralForCausalLM" => "llama",
            "Qwen2ForCausalLM" => "qwen2",
            "Qwen3ForCausalLM" => "qwen3",
            "Phi3ForCausalLM" => "phi3",
            "Gemma2ForCausalLM" => "gemma2",
            "Gemma3ForCausalLM" => "gemma3",
            var other => throw new NotSupportedException($"Architecture '{other}' has no GGUF export."),
        };
        switch (config.RopeScaling)
        {
            case { Type: "dynamic" }:
                throw new NotSupportedException(
                    "Dynamic NTK RoPE scaling cannot be exported: llama.cpp has no dynamic scaling, and this engine's fixed base " +
                    "fitted to original x factor (as vLLM does) has no GGUF key. Export a copy without rope_scaling if contexts stay within max_position_embeddings.");
            case { Type: "llama3" } when arch != "llama":
                throw new NotSupportedException($"llama3 RoPE scaling is only exported for the llama architecture (llama.cpp reads rope_freqs there), not for {config.Architecture}.");
            case { Type: "longrope" } when arch != "phi3":
                throw new NotSupportedException($"longrope RoPE scaling is only exported for Phi-3, not for {config.Architecture}.");
            case { Type: not ("linear" or "llama3" or "longrope") } s:
                throw new NotSupportedException($"RoPE scaling '{s.Type}' has no GGUF export.");
        }
        if (arch == "qwen2" && !config.AttentionBias)
            throw new NotSupportedException("llama.cpp's qwen2 architecture requires q/k/v biases; this Qwen2 config has none.");
        if (config.IsGemma) CheckGemma(config, arch);
        return arch;
    }

    /// <summary>What llama.cpp's gemma2/gemma3 graphs fix rather than read from the file.</summary>
    static void CheckGemma(ModelConfig c, string arch)
    {
        void Refuse(string what) => throw new NotSupportedException($"{c.Architecture} cannot be exported for llama.cpp: {what}");
        if (!c.TieWordEmbeddings) Refuse("llama.cpp's Gemma uses the token embedding as the output head; this config has an untied lm_head.");
        if (c.AttentionBias) Refuse("llama.cpp's Gemma has no q/k/v biases.");
        if (c.SlidingWindow is null) Refuse("llama.cpp's Gemma expects a sliding window.");
        // llama.cpp scales queries by 1/sqrt(head_dim), or 1/sqrt(hidden / heads) for the 27B layer counts.
        var largest = arch == "gemma2" ? c.NumLayers == 46 : c.NumLayers == 62;
        double scalar = largest ? c.HiddenSize / c.NumHeads : c.HeadDim;
        if (c.QueryPreAttnScalar is { } q && q != scalar)
            Refuse($"query_pre_attn_scalar is {q}; llama.cpp scales attention by 1/sqrt({scalar}) for this shape and reads no such key.");
        if (arch == "gemma2" && (c.AttnLogitSoftcap is null || c.FinalLogitSoftcap is null))
            Refuse("llama.cpp's gemma2 always soft-caps attention scores and logits; this config leaves one uncapped.");
        if (arch == "gemma3" && (c.AttnLogitSoftcap is not null || c.FinalLogitSoftcap is not null))
            Refuse("llama.cpp's gemma3 has no soft-capping; this config sets attn_logit_softcapping or final_logit_softcapping.");
        if (arch == "gemma2" && c.RopeScaling is not null) Refuse("RoPE scaling is not exported for gemma2.");
    }

    /// <summary>Writes <paramref name="model"/> with <paramref name="vocabulary"/> to <paramref name="outputPath"/>.</summary>
    public static void Export(Transformer model, GgufVocabulary vocabulary, string outputPath, GgufDType dtype = GgufDType.F32, string? name = null)
    {
        var writer = Build(model, vocabulary, dtype, name);
        writer.Write(outputPath);
    }

    /// <summary>The writer with every key and tensor added (tensor bytes are made while writing).</summary>
    public static GgufWriter Build(Transformer model, GgufVocabulary vocabulary, GgufDType dtype = GgufDType.F32, string? name = null)
    {
        var c = model.Config;
        var arch = Check(c);
        vocabulary = vocabulary.PadTo(c.VocabSize);
        var w = new GgufWriter();
        w.Add("general.architecture", arch);
        w.Add("general.name", SafeName(name ?? "cllm", vocabulary));
        // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16 / MOSTLY_BF16
        w.Add("general.file_type", dtype switch { GgufDType.F16 => 1u, GgufDType.BF16 => 32u, _ => 0u });
        // A sliding window outside Gemma (Mistral, Phi-3, Qwen2/3): llama.cpp's llama, phi3 and qwen graphs ignore it
        // (attend to every key), so the file claims only the context within the window, where both agree.
        var context = c.SlidingWindow is { } window && !c.IsGemma ? Math.Min(window, c.MaxPositions) : c.MaxPositions;
        w.Add($"{arch}.context_length", (uint)context);
        w.Add($"{arch}.embedding_length", (uint)c.HiddenSize);
        w.Add($"{arch}.block_count", (uint)c.NumLayers);
        w.Add($"{arch}.feed_forward_length", (uint)c.IntermediateSize);
        w.Add($"{arch}.attention.head_count", (uint)c.NumHeads);
        w.Add($"{arch}.attention.head_count_kv", (uint)c.NumKvHeads);
        w.Add($"{arch}.attention.key_length", (uint)c.HeadDim);
        w.Add($"{arch}.attention.value_length", (uint)c.HeadDim);
        w.Add($"{arch}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        w.Add($"{arch}.rope.freq_base", (float)c.RopeTheta);
        w.Add($"{arch}.rope.dimension_count", (uint)c.HeadDim);
        w.Add($"{arch}.vocab_size", (uint)c.VocabSize);
        if (c.RopeScaling is { Type: "linear" } linear)
        {
            w.Add($"{arch}.rope.scaling.type", "linear");
            w.Add($"{arch}.rope.scaling.factor", (float)linear.Factor);
        }
        if (c.RopeScaling is { Type: "longrope" } longRope)
        {
            // llama.cpp takes the long factors when its context exceeds original_context_length, as we do per cache.
            w.Add($"{arch}.rope.scaling.original_context_length", (uint)longRope.OriginalMaxPositions!.Value);
            w.Add($"{arch}.rope.scaling.attn_factor", (float)longRope.AttentionFactor);
        }
        if (c.IsGemma)
        {
            w.Add($"{arch}.attention.sliding_window", (uint)c.SlidingWindow!.Value);
            // Layer i is global when (i + 1) % period == 0: llama.cpp's swa pattern (its default is 2 for gemma2, 6 for gemma3).
            w.Add($"{arch}.attention.sliding_window_pattern", (uint)(c.SlidingWindowPattern ?? c.NumLayers + 1));
            if (c.AttnLogitSoftcap is { } attnCap) w.Add($"{arch}.attn_logit_softcapping", (float)attnCap);
            if (c.FinalLogitSoftcap is { } finalCap) w.Add($"{arch}.final_logit_softcapping", (float)finalCap);
            if (c.RopeLocalTheta is { } local) w.Add($"{arch}.rope.freq_base_swa", (float)local);
        }

        var eos = c.EosTokenIds.Count > 0 ? c.EosTokenIds : null;
        vocabulary.WriteTo(w, eosOverride: eos);

        var tensors = model.state_dict();
        var big = dtype switch { GgufDType.F16 => GgufTensorType.F16, GgufDType.BF16 => GgufTensorType.BF16, _ => GgufTensorType.F32 };
        // Gemma applies its norms as 1 + w; llama.cpp multiplies by the stored weight, so the file holds 1 + w.
        void Norm(string ggufName, string ours) =>
            Add(ggufName, tensors[ours], matrix: false, c.IsGemma ? t => t.to(float32) + 1 : null);
        void Add(string ggufName, Tensor source, bool matrix, Func<Tensor, Tensor>? transform = null)
        {
            var type = matrix ? big : GgufTensorType.F32;
            w.AddTensor(ggufName, source.shape, type, () => Bytes(transform is null ? source : transform(source), type));
        }

        // llama.cpp's LLaMA RoPE rotates adjacent pairs (2j, 2j+1); Hugging Face's rotates (j, j + d/2). NeoX
        // RoPE (qwen2, qwen3, phi3) is Hugging Face's layout already.
        var permute = arch == "llama";
        var fused = arch == "phi3"; // llama.cpp's phi3 reads attn_qkv and a gate+up ffn_up
        int d = c.HeadDim, q = c.NumHeads * d, kv = c.NumKvHeads * d;
        Func<Tensor, Tensor> Rows(long offset, long count, int heads) => t =>
        {
            var rows = t.narrow(0, offset, count);
            return permute ? Permute(rows, heads, d) : rows;
        };

        Add("token_embd.weight", tensors["tok_embeddings.weight"], matrix: true);
        for (var i = 0; i < c.NumLayers; i++)
        {
            var (ours, blk) = ($"layers.{i}.", $"blk.{i}.");
            var wqkv = tensors[ours + "attention.wqkv.weight"];
            Norm(blk + "attn_norm.weight", ours + "attention_norm.weight");
            if (fused) Add(blk + "attn_qkv.weight", wqkv, matrix: true);
            else
            {
                w.AddTensor(blk + "attn_q.weight", [q, c.HiddenSize], big, () => Bytes(Rows(0, q, c.NumHeads)(wqkv), big));
                w.AddTensor(blk + "attn_k.weight", [kv, c.HiddenSize], big, () => Bytes(Rows(q, kv, c.NumKvHeads)(wqkv), big));
                w.AddTensor(blk + "attn_v.weight", [kv, c.HiddenSize], big, () => Bytes(wqkv.narrow(0, q + kv, kv), big));
            }
            if (c.AttentionBias)
            {
                var bias = tensors[ours + "attention.wqkv.bias"];
                w.AddTensor(blk + "attn_q.bias", [q], GgufTensorType.F32, () => Bytes(Rows(0, q, c.NumHeads)(bias), GgufTensorType.F32));
                w.AddTensor(blk + "attn_k.bias", [kv], GgufTensorType.F32, () => Bytes(Rows(q, kv, c.NumKvHeads)(bias), GgufTensorType.F32));
                w.AddTensor(blk + "attn_v.bias", [kv], GgufTensorType.F32, () => Bytes(bias.narrow(0, q + kv, kv), GgufTensorType.F32));
            }
            if (c.QkNorm)
            {
                Norm(blk + "attn_q_norm.weight", ours + "attention.q_norm.weight");
                Norm(blk + "attn_k_norm.weight", ours + "attention.k_norm.weight");
            }
            Add(blk + "attn_output.weight", tensors[ours + "attention.wo.weight"], matrix: true);
            if (c.IsGemma) Norm(blk + "post_attention_norm.weight", ours + "post_attention_norm.weight");
            Norm(blk + "ffn_norm.weight", ours + "ffn_norm.weight");
            var w13 = tensors[ours + "feed_forward.w13.weight"];
            long ff = c.IntermediateSize;
            if (fused) Add(blk + "ffn_up.weight", w13, matrix: true);
            else
            {
                w.AddTensor(blk + "ffn_gate.weight", [ff, c.HiddenSize], big, () => Bytes(w13.narrow(0, 0, ff), big));
                w.AddTensor(blk + "ffn_up.weight", [ff, c.HiddenSize], big, () => Bytes(w13.narrow(0, ff, ff), big));
            }
            Add(blk + "ffn_down.weight", tensors[ours + "feed_forward.w2.weight"], matrix: true);
            if (c.IsGemma) Norm(blk + "post_ffw_norm.weight", ours + "post_ffn_norm.weight");
        }
        Norm("output_norm.weight", "norm.weight");
        if (!c.TieWordEmbeddings) Add("output.weight", tensors["output.weight"], matrix: true);
        if (c.RopeScaling is { Type: "llama3" })
        {
            var factors = Llama3FrequencyDivisors(c);
            w.AddTensor("rope_freqs.weight", [factors.Length], GgufTensorType.F32, () => MemoryMarshal.AsBytes(factors.AsSpan()).ToArray());
        }
        if (c.RopeScaling is { Type: "longrope" } rope)
            foreach (var (tensorName, list) in new[] { ("rope_factors_long.weight", rope.LongFactor!), ("rope_factors_short.weight", rope.ShortFactor!) })
            {
                var factors = list.Select(x => (float)x).ToArray();
                w.AddTensor(tensorName, [factors.Length], GgufTensorType.F32, () => MemoryMarshal.AsBytes(factors.AsSpan()).ToArray());
            }
        return w;
    }

    /// <summary>
    /// llama.cpp sets Phi-3's token attributes when general.name contains "phi3" or "phi-3", looking up &lt;unk&gt;,
    /// &lt;s&gt;, &lt;/s&gt; and &lt;|endoftext|&gt;, and fails to load a vocabulary that lacks one of them. Such a name is
    /// written without its "phi" so a Phi-3 model with another vocabulary still loads.
    /// </summary>
    static string SafeName(string name, GgufVocabulary vocabulary)
    {
        var lower = name.ToLowerInvariant();
        if (!lower.Contains("phi3", StringComparison.Ordinal) && !lower.Contains("phi-3", StringComparison.Ordinal)) return name;
        string[] looked = ["<unk>", "<s>", "</s>", "<|endoftext|>"];
        return looked.All(vocabulary.Tokens.Contains) ? name
            : System.Text.RegularExpressions.Regex.Replace(name, "phi-?3", "model", System.Text.RegularExpressions.RegexOptions.IgnoreCase);
    }

    /// <summary>Within each head, GGUF row 2j+p is Hugging Face row p*d/2 + j.</summary>
    static Tensor Permute(Tensor rows, int heads, int headDim)
    {
        var rest = rows.shape.Skip(1).ToArray();
        return rows.reshape([heads, 2, headDim / 2, .. rest]).transpose(1, 2).reshape(rows.shape);
    }

    /// <summary>
    /// llama3 RoPE scaling as llama.cpp applies it: each frequency divided by a factor (rope_freqs). Long
    /// wavelengths are divided by the scaling factor, short ones kept, the band between interpolated.
    /// </summary>
    static float[] Llama3FrequencyDivisors(ModelConfig c)
    {
        var s = c.RopeScaling!;
        double original = s.OriginalMaxPositions!.Value;
        double lowWavelength = original / s.LowFreqFactor, highWavelength = original / s.HighFreqFactor;
        var result = new float[c.HeadDim / 2];
        for (var j = 0; j < result.Length; j++)
        {
            var frequency = 1.0 / Math.Pow(c.RopeTheta, 2.0 * j / c.HeadDim);
            var wavelength = 2 * Math.PI / frequency;
            double scaled;
            if (wavelength > lowWavelength) scaled = frequency / s.Factor;
            else if (wavelength < highWavelength) scaled = frequency;
            else
            {
                var smooth = (original / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                scaled = (1 - smooth) * frequency / s.Factor + smooth * frequency;
            }
            result[j] = (float)(frequency / scaled);
        }
        return result;
    }

    static byte[] Bytes(Tensor tensor, GgufTensorType type)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var t = tensor.detach().cpu();
        return type switch
        {
            GgufTensorType.F32 => MemoryMarshal.AsBytes(t.to(float32).contiguous().data<float>().ToArray().AsSpan()).ToArray(),
            GgufTensorType.F16 => MemoryMarshal.AsBytes(t.to(float16).contiguous().data<Half>().ToArray().AsSpan()).ToArray(),
            GgufTensorType.BF16 => t.to(bfloat16).contiguous().bytes.ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }
}
