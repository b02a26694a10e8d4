using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Cllm.Model;

/// <summary>
/// A Llama-family decoder: token embedding, N blocks of (RMSNorm, attention with RoPE and a KV cache,
/// RMSNorm, SwiGLU), a final RMSNorm and the output head. Q/K/V and gate/up are fused into one matmul
/// each, because on CPU a decoding step's cost is dominated by the number of ops. Family differences are config
/// options: q/k/v biases (Qwen2), q/k RMSNorm per head (Qwen3, Gemma 3), longrope frequencies (Phi-3), sliding-window
/// layers (Mistral, Phi-3, Gemma) and Gemma's block (1 + w norms around attention and MLP, scaled embeddings, GeGLU,
/// its own attention scale and soft-caps, Gemma 3's local RoPE base).
/// Parameter names follow gpt-fast; <see cref="Checkpoints.ModelFiles"/> maps them to Hugging Face names.
/// </summary>
public sealed class Transformer : nn.Module
{
    readonly TokenEmbedding tok_embeddings;
    readonly ModuleList<Block> layers;
    readonly RmsNorm norm;
    readonly Projection? output;
    readonly RotaryEmbedding _rope;
    readonly RotaryEmbedding? _ropeLong; // longrope's long factors, for caches longer than the original length
    readonly RotaryEmbedding? _localRope; // Gemma 3's sliding-window layers: their own base, no scaling

    // The first touch of TorchSharp must find its natives (see TorchNative): before any base constructor runs.
    static Transformer() => Native.TorchNative.EnsureLoaded();

    public Transformer(ModelConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null) : base(nameof(Transformer))
    {
        Config = config.Validate();
        device ??= CPU;
        tok_embeddings = new TokenEmbedding(config.VocabSize, config.HiddenSize, dtype, device);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(_ => new Block(config, dtype, device)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, dtype, device, config.IsGemma);
        if (!config.TieWordEmbeddings)
            output = new Projection(config.HiddenSize, config.VocabSize, hasBias: false, dtype, device);
        _rope = new RotaryEmbedding(config, device);
        if (config.RopeScaling is { Type: "longrope" }) _ropeLong = new RotaryEmbedding(config, device, longFactors: true);
        if (config.RopeLocalTheta is { } local)
            _localRope = new RotaryEmbedding(config with { RopeTheta = local, RopeScaling = null }, device);
        RegisterComponents();
    }

    public ModelConfig Config { get; }

    /// <summary>Positions this model can address (dynamic RoPE scaling stretches max_position_embeddings).</summary>
    public int MaxPositions => RotaryEmbedding.MaxPositions(Config);

    public ScalarType DType => tok_embeddings.Weight.dtype;

    public Device Device => tok_embeddings.Weight.device;

    /// <summary>
    /// One forward pass over <paramref name="tokens"/> ([1, T] int64) at positions start..start+T-1,
    /// attending to the cache's entries 0..start-1 and to each other causally. Writes their keys and values
    /// into <paramref name="cache"/>, whose length becomes start+T. Returns logits [1, T, vocab] (or
    /// [1, 1, vocab] for the last position only) in float32.
    /// With a <paramref name="layout"/>, token i sits at position start + Offsets[i] and sees the cache and the
    /// tokens of this pass its row of Visible allows (its cache entry is still written at slot start + i):
    /// several draft branches verified side by side in one pass.
    /// </summary>
    public Tensor Forward(Tensor tokens, int start, KvCache cache, bool lastPositionOnly = false, PassLayout? layout = null)
    {
        var t = (int)tokens.shape[1];
        var length = start + t;
        if (length > cache.Capacity)
            throw new InvalidOperationException($"The sequence needs {length} positions; the KV cache holds {cache.Capacity}.");
        using var scope = NewDisposeScope();
        // [t, 1, d]: broadcast over heads.
        (Tensor Cos, Tensor Sin) Angles(RotaryEmbedding rope) =>
            layout is null ? rope.Slice(start, t, DType) : rope.Gather(start, layout.Offsets, DType);
        var (global, local) = Ropes(cache.Capacity);
        var (cos, sin) = Angles(global);
        var (localCos, localSin) = local == global ? (cos, sin) : Angles(local);
        Tensor? mask;
        if (layout is null)
        {
            // SDPA's own causal flag is top-left aligned, wrong once a cache precedes the block: build the mask.
            mask = t == 1 ? null : arange(length, device: Device).unsqueeze(0) <= arange(start, length, device: Device).unsqueeze(1);
        }
        else
        {
            layout.Check(t);
            var block = tensor(layout.Visible, [t, t], device: Device);
            mask = start == 0 ? block : cat([ones(t, start, @bool, Device), block], 1);
        }
        var windowMask = SlidingWindowMask(mask, start, t, layout);
        var x = Embed(tokens);
        for (var i = 0; i < layers.Count; i++)
            x = Config.IsSlidingLayer(i)
                ? layers[i].Forward(x, i, start, localCos, localSin, windowMask, cache)
                : layers[i].Forward(x, i, start, cos, sin, mask, cache);
        cache.Advance(length);
        if (lastPositionOnly && t > 1) x = x.narrow(1, t - 1, 1);
        x = norm.forward(x);
        var logits = output is null ? Kernels.Linear(x, tok_embeddings.Weight) : output.forward(x);
        return SoftCap(logits, Config.FinalLogitSoftcap).to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>Logits for every position of <paramref name="tokens"/> ([B, T]) with no cache: the training path.</summary>
    public Tensor ForwardTraining(Tensor tokens)
    {
        var t = (int)tokens.shape[1];
        var (global, local) = Ropes(t);
        var (cos, sin) = global.Slice(0, t, DType);
        var (localCos, localSin) = local == global ? (cos, sin) : local.Slice(0, t, DType);
        var mask = ones(t, t, @bool, Device).tril();
        var windowMask = SlidingWindowMask(mask, 0, t, layout: null);
        var x = Embed(tokens);
        for (var i = 0; i < layers.Count; i++)
            x = Config.IsSlidingLayer(i)
                ? layers[i].Forward(x, i, 0, localCos, localSin, windowMask, cache: null)
                : layers[i].Forward(x, i, 0, cos, sin, mask, cache: null);
        x = norm.forward(x);
        return SoftCap(output is null ? F.linear(x, tok_embeddings.Weight) : output.forward(x), Config.FinalLogitSoftcap);
    }

    /// <summary>Token embeddings; Gemma scales them by sqrt(hidden), a factor rounded to the activation dtype first.</summary>
    Tensor Embed(Tensor tokens)
    {
        var x = tok_embeddings.forward(tokens);
        return Config.IsGemma ? x * tensor(Math.Sqrt(Config.HiddenSize), DType, Device) : x;
    }

    /// <summary>cap * tanh(x / cap) (Gemma 2's soft-capping of attention scores and logits); x itself without a cap.</summary>
    internal static Tensor SoftCap(Tensor x, double? cap) => cap is { } c ? (x / c).tanh() * c : x;

    /// <summary>
    /// The mask of the sliding-window layers: <paramref name="mask"/> (null: all visible) narrowed so that a query at
    /// position p sees only keys at positions in (p - window, p], as Hugging Face and llama.cpp both define it. Keys
    /// stay indexed by position in the cache (slot i holds position i before the pass); older ones are masked, not
    /// dropped. While every query position is within the window of position 0 there is nothing to mask.
    /// </summary>
    Tensor? SlidingWindowMask(Tensor? mask, int start, int t, PassLayout? layout)
    {
        if (Config.SlidingWindow is not { } window || start + (layout?.Offsets.Max() ?? t - 1) < window) return mask;
        var queries = layout is null
            ? arange(start, start + t, device: Device)
            : tensor(layout.Offsets.Select(o => (long)(start + o)).ToArray(), device: Device);
        var keys = layout is null ? arange(start + t, device: Device) : cat([arange(start, device: Device), queries]);
        var near = (queries.unsqueeze(1) - keys.unsqueeze(0)) < window;
        return mask is null ? near : mask.logical_and(near);
    }

    /// <summary>The rotations for a context of <paramref name="context"/> positions. Global: longrope's long factors
    /// past the original length (decided per cache, never per pass; see <see cref="RotaryEmbedding"/>), else the one
    /// table. Local (the sliding-window layers): Gemma 3's own base, else the global one.</summary>
    (RotaryEmbedding Global, RotaryEmbedding Local) Ropes(int context)
    {
        var global = _ropeLong is not null && context > Config.RopeScaling!.OriginalMaxPositions ? _ropeLong : _rope;
        return (global, _localRope ?? global);
    }

    /// <summary>Fills every weight from a seeded normal distribution N(0, std), and each RMSNorm weight from
    /// 1 + N(0, <see cref="NormWeightSpread"/>): random models for tests and benchmarks, and the starting point of
    /// pre-training. Norm weights near 1 (not all exactly 1) keep the start close to the usual one while making
    /// every random-model test, checkpoint round trip and oracle comparison depend on the norms being applied.
    /// Gemma stores norm weights as offsets from 1 (it applies 1 + w), so there they are drawn around 0.</summary>
    public void InitializeRandom(long seed, double std = 0.02)
    {
        using var _ = no_grad();
        var generator = new Generator((ulong)seed, device: CPU);
        foreach (var (name, p) in named_parameters())
        {
            using var value = name.EndsWith("norm.weight", StringComparison.Ordinal)
                ? normal(Config.IsGemma ? 0 : 1, NormWeightSpread, p.shape, float32, generator: generator)
                : normal(0, std, p.shape, float32, generator: generator);
            p.copy_(value);
        }
    }

    /// <summary>The standard deviation of random RMSNorm weights around 1.</summary>
    public const double NormWeightSpread = 0.1;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rope.Dispose();
            _ropeLong?.Dispose();
            _localRope?.Dispose();
        }
        base.Dispose(disposing);
    }

    sealed class Block : nn.Module
    {
        readonly RmsNorm attention_norm, ffn_norm;
        readonly RmsNorm? post_attention_norm, post_ffn_norm; // Gemma: the outputs of attention and MLP are normed too
        readonly Attention attention;
        readonly FeedForward feed_forward;

        public Block(ModelConfig config, ScalarType dtype, Device device) : base(nameof(Block))
        {
            RmsNorm Norm() => new(config.HiddenSize, config.RmsNormEps, dtype, device, config.IsGemma);
            attention_norm = Norm();
            attention = new Attention(config, dtype, device);
            ffn_norm = Norm();
            feed_forward = new FeedForward(config, dtype, device);
            if (config.IsGemma) (post_attention_norm, post_ffn_norm) = (Norm(), Norm());
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, int layer, int start, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache)
        {
            var a = attention.Forward(attention_norm.forward(x), layer, start, cos, sin, mask, cache);
            var h = x + (post_attention_norm?.forward(a) ?? a);
            var f = feed_forward.Forward(ffn_norm.forward(h));
            return h + (post_ffn_norm?.forward(f) ?? f);
        }
    }

    sealed class Attention : nn.Module
    {
        readonly Projection wqkv, wo;
        readonly RmsNorm? q_norm, k_norm;
        readonly int _heads, _kvHeads, _headDim;
        readonly double? _scale, _softcap; // Gemma: 1/sqrt(query_pre_attn_scalar), the score soft-cap

        public Attention(ModelConfig config, ScalarType dtype, Device device) : base(nameof(Attention))
        {
            (_heads, _kvHeads, _headDim) = (config.NumHeads, config.NumKvHeads, config.HeadDim);
            wqkv = new Projection(config.HiddenSize, config.QkvSize, config.AttentionBias, dtype, device);
            wo = new Projection(_heads * _headDim, config.HiddenSize, hasBias: false, dtype, device);
            if (config.QkNorm)
            {
                // Qwen3 scales by w, Gemma 3 by 1 + w, as their other norms do.
                q_norm = new RmsNorm(_headDim, config.RmsNormEps, dtype, device, config.IsGemma);
                k_norm = new RmsNorm(_headDim, config.RmsNormEps, dtype, device, config.IsGemma);
            }
            _scale = config.QueryPreAttnScalar is { } s ? 1 / Math.Sqrt(s) : null;
            _softcap = config.AttnLogitSoftcap;
            RegisterComponents();
        }

        public Tensor Forward(Tensor x, int layer, int start, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache)
        {
            long b = x.shape[0], t = x.shape[1];
            // Rotate q and k in one go, in [b, t, heads, d] layout (cos/sin broadcast over heads): fewer ops per layer.
            var qkv = wqkv.forward(x).view(b, t, _heads + 2 * _kvHeads, _headDim);
            // q/k norms (Qwen3, Gemma 3) per head before RoPE; contiguous heads take the fused RMSNorm kernel.
            var unrotated = q_norm is null || k_norm is null ? qkv
                : cat([q_norm.forward(qkv.narrow(2, 0, _heads).contiguous()),
                    k_norm.forward(qkv.narrow(2, _heads, _kvHeads).contiguous())], 2);
            var qk = Kernels.RotateHeads(unrotated, _heads + _kvHeads, cos, sin);
            var q = qk.narrow(2, 0, _heads).transpose(1, 2);
            var k = qk.narrow(2, _heads, _kvHeads).transpose(1, 2);
            var v = qkv.narrow(2, _heads + _kvHeads, _kvHeads).transpose(1, 2);
            if (cache is not null) (k, v) = cache.Write(layer, start, k, v);

            // Grouped-query attention without copying K/V: fold each KV head's group of query heads into
            // the query length, [b, kvHeads, group*t, d], and repeat the mask rows to match.
            var group = _heads / _kvHeads;
            if (group > 1)
            {
                q = q.reshape(b, _kvHeads, group * t, _headDim);
                mask = mask?.repeat(group, 1);
            }
            var y = _scale is null && _softcap is null ? Kernels.Attention(q, k, v, mask) : Attend(q, k, v, mask);
            y = y.view(b, _heads, t, _headDim).transpose(1, 2).reshape(b, t, _heads * _headDim);
            return wo.forward(y);
        }

        /// <summary>Attention written out, for what SDPA cannot do (its own scale, soft-capped scores), as Hugging Face's
        /// eager attention: softmax in float32.</summary>
        Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask)
        {
            var scores = SoftCap(q.matmul(k.transpose(-2, -1)) * (_scale ?? 1 / Math.Sqrt(_headDim)), _softcap);
            if (mask is not null) scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
            return scores.softmax(-1, float32).to(q.dtype).matmul(v);
        }
    }

    sealed class FeedForward : nn.Module
    {
        readonly Projection w13, w2;
        readonly long _intermediate;
        readonly bool _geglu;

        public FeedForward(ModelConfig config, ScalarType dtype, Device device) : base(nameof(FeedForward))
        {
            _intermediate = config.IntermediateSize;
            _geglu = config.IsGemma;
            w13 = new Projection(config.HiddenSize, 2 * config.IntermediateSize, hasBias: false, dtype, device);
            w2 = new Projection(config.IntermediateSize, config.HiddenSize, hasBias: false, dtype, device);
            RegisterComponents();
        }

        public Tensor Forward(Tensor x)
        {
            var gateUp = w13.forward(x);
            if (!_geglu) return w2.forward(Kernels.SwiGlu(gateUp, _intermediate));
            var gate = F.gelu(gateUp.narrow(-1, 0, _intermediate), approximate: TorchSharp.Modules.GELU.Approximate.tanh);
            return w2.forward(gate * gateUp.narrow(-1, _intermediate, _intermediate));
        }
    }
}

/// <summary>Root-mean-square layer norm, computed in float32 whatever the weights' dtype (as Hugging Face does).
/// With <c>plusOne</c> (Gemma) the stored weight w scales by 1 + w, the whole product in float32 before rounding.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;
    readonly bool _plusOne;

    public RmsNorm(long size, double eps, ScalarType dtype, Device device, bool plusOne = false) : base(nameof(RmsNorm))
    {
        weight = new Parameter(plusOne ? zeros(size, dtype, device) : ones(size, dtype, device));
        _eps = eps;
        _plusOne = plusOne;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!_plusOne) return Kernels.RmsNorm(x, weight, _eps);
        var input = x.to(float32);
        var normed = input * rsqrt(input.pow(2).mean([-1L], keepdim: true) + _eps);
        return (normed * (weight.to(float32) + 1)).to(x.dtype);
    }
}
