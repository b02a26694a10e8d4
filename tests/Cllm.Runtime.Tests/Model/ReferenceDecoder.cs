using Cllm.Checkpoints;
using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>
/// An independent float64 reference for a decoder, written from Hugging Face's modelling definitions and nothing
/// else of ours: it reads the weights under their Hugging Face names (<see cref="ModelFiles.ToHuggingFace"/>) and
/// computes attention query by query, each query at position p looping over the keys it may see: every earlier one,
/// or with a sliding window only those at positions in (p - window, p]. No fused projection, kernel, KV cache or
/// mask tensor of the runtime is used. For what llama.cpp cannot check (its "llama" architecture, which Mistral is
/// exported as, ignores sliding windows), and a second opinion on Gemma 2 and 3 (Gemma2/Gemma3 modelling: norms
/// applied as 1 + w, embeddings times sqrt(hidden), q/k norms, query_pre_attn_scalar, soft-capping, norms around
/// attention and MLP, GeGLU with tanh GELU, a local RoPE base on the sliding layers).
/// </summary>
static class ReferenceDecoder
{
    /// <summary>Logits [tokens, vocab] of every position of <paramref name="tokens"/> (positions 0..T-1), float64.
    /// <paramref name="ggmlGelu"/> computes GELU as llama.cpp's CPU backend does (ggml defines GGML_GELU_FP16: the input is
    /// rounded to float16 and looked up in a float16 table of GELU values), to compare with llama.cpp beyond that rounding.</summary>
    public static Tensor Logits(Transformer model, int[] tokens, bool ggmlGelu = false)
    {
        var c = model.Config;
        using var _ = no_grad();
        var weights = ModelFiles.ToHuggingFace(model);
        SplitFused(weights, c);
        Tensor W(string name) => weights[name].to(float64);
        int t = tokens.Length, d = c.HeadDim, group = c.NumHeads / c.NumKvHeads;
        var ids = tensor(tokens.Select(x => (long)x).ToArray());
        var gemma = c.Architecture.StartsWith("Gemma", StringComparison.Ordinal);
        Tensor Norm(Tensor x, string weight) =>
            x / (x.pow(2).mean([-1L], keepdim: true) + c.RmsNormEps).sqrt() * (gemma ? W(weight) + 1 : W(weight));
        var x = W("model.embed_tokens.weight").index_select(0, ids);
        if (gemma) x *= Math.Sqrt(c.HiddenSize);
        var global = Rotation(t, c.HeadDim, c.RopeTheta, c.RopeScaling);
        var local = c.RopeLocalTheta is { } localTheta ? Rotation(t, c.HeadDim, localTheta, scaling: null) : global;
        for (var l = 0; l < c.NumLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var sliding = c.SlidingWindow is not null && (c.SlidingWindowPattern is not { } period || (l + 1) % period != 0);
            var (cos, sin) = sliding ? local : global;
            var h = Norm(x, p + "input_layernorm.weight");
            Tensor Project(string name, int heads)
            {
                var y = h.matmul(W(p + $"self_attn.{name}.weight").t());
                if (c.AttentionBias) y += W(p + $"self_attn.{name}.bias");
                return y.view(t, heads, d);
            }
            var (q, k) = (Project("q_proj", c.NumHeads), Project("k_proj", c.NumKvHeads));
            if (weights.ContainsKey(p + "self_attn.q_norm.weight"))
                (q, k) = (Norm(q, p + "self_attn.q_norm.weight"), Norm(k, p + "self_attn.k_norm.weight"));
            (q, k) = (Rotate(q, cos, sin), Rotate(k, cos, sin));
            var v = Project("v_proj", c.NumKvHeads);
            var attended = zeros(t, c.NumHeads, d, float64);
            for (var position = 0; position < t; position++)
            {
                var first = sliding ? Math.Max(0, position - c.SlidingWindow!.Value + 1) : 0;
                var count = position - first + 1;
                for (var head = 0; head < c.NumHeads; head++)
                {
                    var keys = k.narrow(0, first, count).select(1, head / group); // [count, d]
                    var values = v.narrow(0, first, count).select(1, head / group);
                    var scores = keys.matmul(q[position, head]) / Math.Sqrt(c.QueryPreAttnScalar ?? d);
                    if (c.AttnLogitSoftcap is { } cap) scores = (scores / cap).tanh() * cap;
                    attended[position, head] = scores.softmax(0).matmul(values);
                }
            }
            var attention = attended.view(t, c.NumHeads * d).matmul(W(p + "self_attn.o_proj.weight").t());
            if (gemma)
            {
                x = x + Norm(attention, p + "post_attention_layernorm.weight");
                var m = Norm(x, p + "pre_feedforward_layernorm.weight");
                var gate = m.matmul(W(p + "mlp.gate_proj.weight").t());
                var up = m.matmul(W(p + "mlp.up_proj.weight").t());
                // GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
                static Tensor Gelu(Tensor x) => 0.5 * x * (1 + (Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh());
                var gelu = ggmlGelu ? Gelu(gate.to(float16).to(float32)).to(float16).to(float64) : Gelu(gate);
                x = x + Norm((gelu * up).matmul(W(p + "mlp.down_proj.weight").t()), p + "post_feedforward_layernorm.weight");
            }
            else
            {
                x = x + attention;
                var m = Norm(x, p + "post_attention_layernorm.weight");
                var gate = m.matmul(W(p + "mlp.gate_proj.weight").t());
                var up = m.matmul(W(p + "mlp.up_proj.weight").t());
                x = x + (gate * gate.sigmoid() * up).matmul(W(p + "mlp.down_proj.weight").t());
            }
        }
        x = Norm(x, "model.norm.weight");
        var logits = x.matmul(W(c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight").t());
        return c.FinalLogitSoftcap is { } final ? (logits / final).tanh() * final : logits;
    }

    /// <summary>Phi-3 checkpoints hold q/k/v as qkv_proj and gate/up as gate_up_proj; Phi3's modelling splits them by
    /// rows (q, k, v; gate, up), so the reference reads the parts under the names the other families use.</summary>
    static void SplitFused(Dictionary<string, Tensor> weights, ModelConfig c)
    {
        for (var l = 0; l < c.NumLayers; l++)
        {
            var p = $"model.layers.{l}.";
            if (weights.Remove(p + "self_attn.qkv_proj.weight", out var qkv))
            {
                long q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
                weights[p + "self_attn.q_proj.weight"] = qkv.narrow(0, 0, q);
                weights[p + "self_attn.k_proj.weight"] = qkv.narrow(0, q, kv);
                weights[p + "self_attn.v_proj.weight"] = qkv.narrow(0, q + kv, kv);
            }
            if (weights.Remove(p + "mlp.gate_up_proj.weight", out var gateUp))
            {
                weights[p + "mlp.gate_proj.weight"] = gateUp.narrow(0, 0, c.IntermediateSize);
                weights[p + "mlp.up_proj.weight"] = gateUp.narrow(0, c.IntermediateSize, c.IntermediateSize);
            }
        }
    }

    /// <summary>cos and sin [T, 1, d/2] of position p times 1 / theta^(2j/d), divided by the factor of linear scaling.</summary>
    static (Tensor Cos, Tensor Sin) Rotation(int t, int headDim, double theta, RopeScaling? scaling)
    {
        if (scaling is not (null or { Type: "linear" })) throw new NotSupportedException("The reference decoder has linear RoPE scaling only.");
        var angles = new double[t * (headDim / 2)];
        for (var position = 0; position < t; position++)
            for (var j = 0; j < headDim / 2; j++)
                angles[position * (headDim / 2) + j] = position / Math.Pow(theta, 2.0 * j / headDim) / (scaling?.Factor ?? 1);
        var a = tensor(angles, float64).view(t, 1, headDim / 2);
        return (a.cos(), a.sin());
    }

    /// <summary>Hugging Face's rotate_half layout: dimension j pairs with j + d/2.</summary>
    static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var (x1, x2) = (x.narrow(-1, 0, half), x.narrow(-1, half, half));
        return cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1);
    }
}
