using Cllm.Checkpoints;
using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>
/// An independent float64 reference for a decoder, written from Hugging Face's modelling definitions and nothing
/// else of ours: it reads the weights under their Hugging Face names (<see cref="ModelFiles.ToHuggingFace"/>) and
/// computes attention query by query, each query at position p looping over the keys it may see: every earlier one,
/// or with a sliding window only those at positions in (p - window, p]. No fused projection, kernel, KV cache or
/// mask tensor of the runtime is used. For the architectures llama.cpp cannot check (its "llama" architecture, which
/// Mistral is exported as, ignores sliding windows).
/// </summary>
static class ReferenceDecoder
{
    /// <summary>Logits [tokens, vocab] of every position of <paramref name="tokens"/> (positions 0..T-1), float64.</summary>
    public static Tensor Logits(Transformer model, int[] tokens)
    {
        var c = model.Config;
        using var _ = no_grad();
        var weights = ModelFiles.ToHuggingFace(model);
        Tensor W(string name) => weights[name].to(float64);
        int t = tokens.Length, d = c.HeadDim, group = c.NumHeads / c.NumKvHeads;
        var ids = tensor(tokens.Select(x => (long)x).ToArray());
        var x = W("model.embed_tokens.weight").index_select(0, ids);
        var (cos, sin) = Rotation(c, t);
        for (var l = 0; l < c.NumLayers; l++)
        {
            var p = $"model.layers.{l}.";
            var h = Norm(x, W(p + "input_layernorm.weight"), c.RmsNormEps);
            Tensor Project(string name, int heads)
            {
                var y = h.matmul(W(p + $"self_attn.{name}.weight").t());
                if (c.AttentionBias) y += W(p + $"self_attn.{name}.bias");
                return y.view(t, heads, d);
            }
            var q = Rotate(Project("q_proj", c.NumHeads), cos, sin);
            var k = Rotate(Project("k_proj", c.NumKvHeads), cos, sin);
            var v = Project("v_proj", c.NumKvHeads);
            var attended = zeros(t, c.NumHeads, d, float64);
            for (var position = 0; position < t; position++)
            {
                var first = c.IsSlidingLayer(l) ? Math.Max(0, position - c.SlidingWindow!.Value + 1) : 0;
                var count = position - first + 1;
                for (var head = 0; head < c.NumHeads; head++)
                {
                    var keys = k.narrow(0, first, count).select(1, head / group); // [count, d]
                    var values = v.narrow(0, first, count).select(1, head / group);
                    var scores = keys.matmul(q[position, head]) / Math.Sqrt(d);
                    attended[position, head] = scores.softmax(0).matmul(values);
                }
            }
            x = x + attended.view(t, c.NumHeads * d).matmul(W(p + "self_attn.o_proj.weight").t());
            var m = Norm(x, W(p + "post_attention_layernorm.weight"), c.RmsNormEps);
            var gate = m.matmul(W(p + "mlp.gate_proj.weight").t());
            var up = m.matmul(W(p + "mlp.up_proj.weight").t());
            x = x + (gate * gate.sigmoid() * up).matmul(W(p + "mlp.down_proj.weight").t());
        }
        x = Norm(x, W("model.norm.weight"), c.RmsNormEps);
        return x.matmul(W(c.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight").t());
    }

    static Tensor Norm(Tensor x, Tensor weight, double eps) => x / (x.pow(2).mean([-1L], keepdim: true) + eps).sqrt() * weight;

    /// <summary>cos and sin [T, 1, d/2] of position p times 1 / theta^(2j/d) (no RoPE scaling).</summary>
    static (Tensor Cos, Tensor Sin) Rotation(ModelConfig c, int t)
    {
        if (c.RopeScaling is not null) throw new NotSupportedException("The reference decoder has no RoPE scaling.");
        var angles = new double[t * (c.HeadDim / 2)];
        for (var position = 0; position < t; position++)
            for (var j = 0; j < c.HeadDim / 2; j++)
                angles[position * (c.HeadDim / 2) + j] = position / Math.Pow(c.RopeTheta, 2.0 * j / c.HeadDim);
        var a = tensor(angles, float64).view(t, 1, c.HeadDim / 2);
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
