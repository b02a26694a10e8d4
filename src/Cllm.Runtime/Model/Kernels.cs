using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Cllm.Model;

/// <summary>
/// The model's compute seam: each operation runs a fused CPU kernel in inference passes (float32 or bfloat16,
/// contiguous, no autograd) and libtorch otherwise (training, other devices, other dtypes). On a small model a
/// decoding pass costs about as much per op call as per flop (1-2 µs each through TorchSharp), so RMSNorm, RoPE
/// and SwiGLU are one call each here instead of 5-7. Every kernel treats rows independently, so a token's result
/// never depends on how many tokens share its pass.
/// </summary>
static unsafe class Kernels
{
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        var began = PassProfile.Begin();
        var y = LinearKernel.Linear(x, weight, bias);
        PassProfile.End(PassProfile.Linear, began);
        return y;
    }

    /// <summary>softmax(q kᵀ / sqrt(d) + mask) v, libtorch's fused attention ([b, heads, t, d]; mask true = attend).</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        var began = PassProfile.Begin();
        var y = F.scaled_dot_product_attention(q, k, v, mask);
        PassProfile.End(PassProfile.Attention, began);
        return y;
    }

    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps)
    {
        var began = PassProfile.Begin();
        var y = RmsNormCore(x, weight, eps);
        PassProfile.End(PassProfile.Norm, began);
        return y;
    }

    public static Tensor RotateHeads(Tensor x, int heads, Tensor cos, Tensor sin)
    {
        var began = PassProfile.Begin();
        var y = RotateHeadsCore(x, heads, cos, sin);
        PassProfile.End(PassProfile.Rope, began);
        return y;
    }

    public static Tensor SwiGlu(Tensor gateUp, long intermediate)
    {
        var began = PassProfile.Begin();
        var y = SwiGluCore(gateUp, intermediate);
        PassProfile.End(PassProfile.SwiGlu, began);
        return y;
    }

    static bool Fused(Tensor x) =>
        LinearKernel.Enabled && !is_grad_enabled() && x.device_type == TorchSharp.DeviceType.CPU && x.is_contiguous()
        && (x.dtype == ScalarType.Float32 || x.dtype == ScalarType.BFloat16);

    /// <summary>RMSNorm over the last dimension, computed in float32 (as Hugging Face does), times the weight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Tensor RmsNormCore(Tensor x, Tensor weight, double eps)
    {
        if (!Fused(x) || weight.dtype != x.dtype || !weight.is_contiguous())
        {
            var input = x.dtype == float32 ? x : x.to(float32);
            var normed = input * rsqrt(input.pow(2).mean([-1L], keepdim: true) + eps);
            return weight * (x.dtype == float32 ? normed : normed.to(x.dtype));
        }
        var y = empty_like(x);
        int d = (int)x.shape[^1], rows = (int)(x.numel() / d);
        var bf16 = x.dtype == ScalarType.BFloat16;
        byte* xs = Pointer(x), ys = Pointer(y), ws = Pointer(weight);
        var scale = stackalloc float[d <= 4096 ? d : 0];
        var wide = d <= 4096 ? scale : (float*)NativeMemoryAlloc(d);
        try
        {
            for (var r = 0; r < rows; r++)
            {
                Load(xs, bf16, (long)r * d, d, wide);
                double sum = 0;
                for (var i = 0; i < d; i++) sum += wide[i] * wide[i];
                var inv = (float)(1 / Math.Sqrt(sum / d + eps));
                for (var i = 0; i < d; i++)
                {
                    var normed = wide[i] * inv;
                    if (bf16)
                    {
                        // As PyTorch: the normed value rounded to bfloat16, times the bfloat16 weight, rounded.
                        var product = RoundBf16(normed) * Widen(((ushort*)ws)[i]);
                        ((ushort*)ys)[(long)r * d + i] = ToBf16(product);
                    }
                    else ((float*)ys)[(long)r * d + i] = ((float*)ws)[i] * normed;
                }
            }
        }
        finally
        {
            if (d > 4096) System.Runtime.InteropServices.NativeMemory.Free(wide);
        }
        GC.KeepAlive(x);
        GC.KeepAlive(weight);
        return y;
    }

    /// <summary>
    /// Rotates the first <paramref name="heads"/> heads of <paramref name="x"/> ([b, t, allHeads, d]) by RoPE in
    /// Hugging Face's layout (j pairs with j + d/2), cos/sin [t, 1, d]. In place where fused (x must then be a fresh
    /// tensor the caller owns); returns the rotated tensor of those heads either way ([b, t, heads, d] view or copy).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Tensor RotateHeadsCore(Tensor x, int heads, Tensor cos, Tensor sin)
    {
        if (!Fused(x) || cos.dtype != x.dtype || !cos.is_contiguous() || !sin.is_contiguous())
            return RotaryEmbedding.Apply(x.narrow(2, 0, heads), cos, sin);
        int t = (int)x.shape[1], all = (int)x.shape[2], d = (int)x.shape[3], half = d / 2, b = (int)x.shape[0];
        var bf16 = x.dtype == ScalarType.BFloat16;
        byte* xs = Pointer(x), cs = Pointer(cos), ss = Pointer(sin);
        for (var bi = 0; bi < b; bi++)
            for (var i = 0; i < t; i++)
                for (var h = 0; h < heads; h++)
                {
                    var row = (((long)bi * t + i) * all + h) * d;
                    var table = (long)i * d;
                    for (var j = 0; j < half; j++)
                    {
                        if (bf16)
                        {
                            ushort* p = (ushort*)xs, c = (ushort*)cs, s = (ushort*)ss;
                            float x1 = Widen(p[row + j]), x2 = Widen(p[row + j + half]);
                            // x * cos + rotate_half(x) * sin, each product and the sum rounded as bfloat16 ops round.
                            p[row + j] = ToBf16(RoundBf16(x1 * Widen(c[table + j])) + RoundBf16(-x2 * Widen(s[table + j])));
                            p[row + j + half] = ToBf16(RoundBf16(x2 * Widen(c[table + j + half])) + RoundBf16(x1 * Widen(s[table + j + half])));
                        }
                        else
                        {
                            float* p = (float*)xs, c = (float*)cs, s = (float*)ss;
                            float x1 = p[row + j], x2 = p[row + j + half];
                            p[row + j] = x1 * c[table + j] + -x2 * s[table + j];
                            p[row + j + half] = x2 * c[table + j + half] + x1 * s[table + j + half];
                        }
                    }
                }
        GC.KeepAlive(x);
        GC.KeepAlive(cos);
        GC.KeepAlive(sin);
        return x.narrow(2, 0, heads);
    }

    /// <summary>silu(gate) * up for gateUp = [gate | up] along the last dimension.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Tensor SwiGluCore(Tensor gateUp, long intermediate)
    {
        if (!Fused(gateUp) || gateUp.dtype != ScalarType.Float32)
            return F.silu(gateUp.narrow(-1, 0, intermediate)) * gateUp.narrow(-1, intermediate, intermediate);
        var shape = gateUp.shape.ToArray();
        shape[^1] = intermediate;
        var y = empty(shape, gateUp.dtype, gateUp.device);
        int ff = (int)intermediate, rows = (int)(gateUp.numel() / (2 * ff));
        float* g = (float*)Pointer(gateUp), o = (float*)Pointer(y);
        for (var r = 0; r < rows; r++)
        {
            float* gate = g + (long)r * 2 * ff, up = gate + ff, output = o + (long)r * ff;
            var j = 0;
            for (; j + 16 <= ff; j += 16)
            {
                var v = Vector512.Load(gate + j);
                (v / (Vector512<float>.One + Vector512.Exp(-v)) * Vector512.Load(up + j)).Store(output + j);
            }
            for (; j < ff; j++) output[j] = gate[j] / (1 + MathF.Exp(-gate[j])) * up[j];
        }
        GC.KeepAlive(gateUp);
        return y;
    }

    static void Load(byte* source, bool bf16, long offset, int count, float* target)
    {
        if (bf16) for (var i = 0; i < count; i++) target[i] = Widen(((ushort*)source)[offset + i]);
        else Buffer.MemoryCopy((float*)source + offset, target, count * 4L, count * 4L);
    }

    static float* NativeMemoryAlloc(int floats) => (float*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)floats, 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ushort ToBf16(float value) => LinearKernel.ToBf16(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float RoundBf16(float value) => Widen(ToBf16(value));

    static byte* Pointer(Tensor t) => (byte*)LinearKernel.Pointer(t);
}
