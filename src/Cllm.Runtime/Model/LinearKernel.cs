using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;

namespace Cllm.Model;

/// <summary>
/// y = x Wᵀ (+ b) for inference passes on the CPU, with W in PyTorch's [out, in] layout, float32 or bfloat16.
/// Why our own: libtorch runs a one-row product on one thread and reads [out, in] weights at about half the
/// memory bandwidth; here the outputs are split over <see cref="Threads"/> .NET threads and each thread
/// streams its rows of W once per pass, whatever the number of input rows (rows are tiled in registers, the
/// weights stay in L1 across the row tiles). So a 16-row Jacobi pass reads the weights once, as a 1-row pass does.
/// Each output element is summed in the same order whatever the pass's row count or tiling (16 lanes over
/// the input in order, then one fixed lane reduction): a token's logits in a Jacobi pass are bit-identical to
/// its logits in a one-token pass, which is what keeps float32 Jacobi exactly equal to greedy decoding.
/// Used only where AVX-512 is present and the input size is a multiple of 16; otherwise F.linear runs.
/// </summary>
static unsafe class LinearKernel
{
    const int Lanes = 16;
    // Below this many multiply-adds a pass is cheaper on one thread than handing work to another.
    const long ParallelThreshold = 1 << 18;

    static int _threads = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Threads the products are split over (process-wide, like libtorch's own thread count).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Threads must be positive.");
    }

    /// <summary>False turns the kernel off (F.linear everywhere): for measurements and comparisons.</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("CLLM_KERNELS") != "0";

    public static bool Supported => Avx512F.IsSupported;

    /// <summary>x · Wᵀ + b: this kernel where it applies, else libtorch's F.linear (training, other devices).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) =>
        Handles(x, weight, bias) ? Forward(x, weight, bias) : nn.functional.linear(x, weight, bias);

    /// <summary>Whether <see cref="Forward"/> would handle this product.</summary>
    public static bool Handles(Tensor x, Tensor weight, Tensor? bias) =>
        Enabled && Supported && !is_grad_enabled()
        && x.device_type == TorchSharp.DeviceType.CPU && weight.device_type == TorchSharp.DeviceType.CPU
        && (weight.dtype == ScalarType.Float32 || weight.dtype == ScalarType.BFloat16)
        && x.dtype == weight.dtype && (bias is null || bias.dtype == weight.dtype)
        && weight.is_contiguous() && weight.shape[1] % Lanes == 0 && x.shape[^1] == weight.shape[1]
        // bfloat16 products of several rows: libtorch's (oneDNN, AVX512-BF16 dot products) measured about 2x faster
        // than widening here; one-row products are memory-bound and about 2x faster here.
        && (weight.dtype == ScalarType.Float32 || x.numel() / weight.shape[1] <= MaxBf16Rows);

    const long MaxBf16Rows = 2;

    /// <summary>x [..., in] · W[out, in]ᵀ + b, in x's dtype. Call only when <see cref="Handles"/> says so.</summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor? bias)
    {
        int inFeatures = (int)weight.shape[1], outFeatures = (int)weight.shape[0];
        var input = x.is_contiguous() ? x : x.contiguous();
        var rows = (int)(input.numel() / inFeatures);
        var outShape = x.shape.ToArray();
        outShape[^1] = outFeatures;
        var y = empty(outShape, x.dtype, x.device);
        if (rows == 0) return y;

        var bf16 = weight.dtype == ScalarType.BFloat16;
        // bfloat16 activations are widened once per call; the weights are widened in registers as they stream.
        float[]? widened = bf16 ? new float[(long)rows * inFeatures] : null;
        float[]? output = bf16 ? new float[(long)rows * outFeatures] : null;
        // A float32 bias is read in place; only a bfloat16 one (rare: Qwen2's q/k/v bias in bf16) is widened.
        float[]? biasValues = bias is null || bias.dtype == ScalarType.Float32 ? null : bias.to(ScalarType.Float32).data<float>().ToArray();
        fixed (float* wide = widened, outBuffer = output, widenedBias = biasValues)
        {
            float* b = bias is null ? null : widenedBias != null ? widenedBias : (float*)Pointer(bias.is_contiguous() ? bias : bias.contiguous());
            float* xs = bf16 ? wide : (float*)Pointer(input);
            if (bf16) WidenBf16((ushort*)Pointer(input), wide, (long)rows * inFeatures);
            float* ys = bf16 ? outBuffer : (float*)Pointer(y);
            var job = new Job((nint)xs, rows, inFeatures, Pointer(weight), outFeatures, bf16, (nint)ys, (nint)b);
            var macs = (long)rows * inFeatures * outFeatures;
            var parts = macs < ParallelThreshold ? 1 : Math.Min(_threads, outFeatures / 8);
            if (parts <= 1) job.Run(0, outFeatures);
            else
            {
                // Output blocks of 8 per part, so every part but the last runs whole 8-wide tiles.
                var per = (outFeatures / 8 + parts - 1) / parts * 8;
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts },
                    p => job.Run(p * per, p == parts - 1 ? outFeatures : Math.Min(outFeatures, (p + 1) * per)));
            }
            if (bf16) NarrowToBf16(outBuffer, (ushort*)Pointer(y), (long)rows * outFeatures);
        }
        GC.KeepAlive(input);
        GC.KeepAlive(weight);
        GC.KeepAlive(bias);
        return y;
    }

    /// <summary>The address of a contiguous CPU tensor's first element (its memory is native and never moves).</summary>
    internal static nint Pointer(Tensor t)
    {
        // Tensor.bytes spans the whole tensor, and a span holds at most 2 GiB: take the first element's span.
        using var first = t.numel() * t.ElementSize > int.MaxValue ? t.view(-1).narrow(0, 0, 1) : null;
        fixed (byte* p = (first ?? t).bytes) return (nint)p;
    }

    interface IWeightRow
    {
        /// <summary>16 weights from row pointer <paramref name="row"/>, element <paramref name="column"/>, as float32.</summary>
        static abstract Vector512<float> Load(byte* row, int column);
        static abstract int ElementSize { get; }
    }

    struct Float32Row : IWeightRow
    {
        public static int ElementSize => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, int column) => Vector512.Load((float*)row + column);
    }

    struct BFloat16Row : IWeightRow
    {
        public static int ElementSize => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, int column) =>
            Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + column)), 16).AsSingle();
    }

    readonly record struct Job(nint X, int Rows, int In, nint Weights, int Out, bool Bf16, nint Y, nint Bias)
    {
        public void Run(int from, int to)
        {
            if (Bf16) Run<BFloat16Row>(from, to);
            else Run<Float32Row>(from, to);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Run<TW>(int from, int to) where TW : struct, IWeightRow
        {
            float* x = (float*)X, y = (float*)Y, b = (float*)Bias;
            byte* w = (byte*)Weights;
            int n = In, outs = Out, rows = Rows;
            long stride = (long)n * TW.ElementSize;
            var j = from;
            if (rows >= 4)
            {
                for (; j + 4 <= to; j += 4)
                {
                    var wj = w + j * stride;
                    var r = 0;
                    // The first row tile also hints the next 4 weight rows into the cache: while the pass's rows are
                    // multiplied with these, the next ones stream in from memory (the later row tiles find these in L1).
                    byte* next = j + 8 <= to ? wj + 4 * stride : null;
                    for (; r + 4 <= rows; r += 4)
                        Tile4x4<TW>(x + (long)r * n, n, wj, stride, y + (long)r * outs + j, outs, b, j, r == 0 ? next : null);
                    for (; r < rows; r++) Tile1x4<TW>(x + (long)r * n, n, wj, stride, y + (long)r * outs + j, b, j);
                }
            }
            else
            {
                for (; j + 8 <= to; j += 8)
                    for (var r = 0; r < rows; r++) Tile1x8<TW>(x + (long)r * n, n, w + j * stride, stride, y + (long)r * outs + j, b, j);
            }
            for (; j < to; j++)
                for (var r = 0; r < rows; r++)
                {
                    var acc = Vector512<float>.Zero;
                    var xr = x + (long)r * n;
                    for (var c = 0; c < n; c += Lanes) acc = Avx512F.FusedMultiplyAdd(TW.Load(w + j * stride, c), Vector512.Load(xr + c), acc);
                    y[(long)r * outs + j] = Sum(acc) + (b == null ? 0 : b[j]);
                }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Tile1x8<TW>(float* xr, int n, byte* w, long stride, float* yr, float* b, int j) where TW : struct, IWeightRow
        {
            byte* w0 = w, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
            byte* w4 = w3 + stride, w5 = w4 + stride, w6 = w5 + stride, w7 = w6 + stride;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (var c = 0; c < n; c += Lanes)
            {
                var v = Vector512.Load(xr + c);
                a0 = Avx512F.FusedMultiplyAdd(TW.Load(w0, c), v, a0);
                a1 = Avx512F.FusedMultiplyAdd(TW.Load(w1, c), v, a1);
                a2 = Avx512F.FusedMultiplyAdd(TW.Load(w2, c), v, a2);
                a3 = Avx512F.FusedMultiplyAdd(TW.Load(w3, c), v, a3);
                a4 = Avx512F.FusedMultiplyAdd(TW.Load(w4, c), v, a4);
                a5 = Avx512F.FusedMultiplyAdd(TW.Load(w5, c), v, a5);
                a6 = Avx512F.FusedMultiplyAdd(TW.Load(w6, c), v, a6);
                a7 = Avx512F.FusedMultiplyAdd(TW.Load(w7, c), v, a7);
            }
            Store(yr, a0, a1, a2, a3, b, j);
            Store(yr + 4, a4, a5, a6, a7, b, j + 4);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Tile1x4<TW>(float* xr, int n, byte* w, long stride, float* yr, float* b, int j) where TW : struct, IWeightRow
        {
            byte* w0 = w, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (var c = 0; c < n; c += Lanes)
            {
                var v = Vector512.Load(xr + c);
                a0 = Avx512F.FusedMultiplyAdd(TW.Load(w0, c), v, a0);
                a1 = Avx512F.FusedMultiplyAdd(TW.Load(w1, c), v, a1);
                a2 = Avx512F.FusedMultiplyAdd(TW.Load(w2, c), v, a2);
                a3 = Avx512F.FusedMultiplyAdd(TW.Load(w3, c), v, a3);
            }
            Store(yr, a0, a1, a2, a3, b, j);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Tile4x4<TW>(float* x0, int n, byte* w, long stride, float* y0, int outs, float* b, int j, byte* next)
            where TW : struct, IWeightRow
        {
            float* x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
            byte* p0 = w, p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride;
            byte* q0 = next, q1 = next + stride, q2 = q1 + stride, q3 = q2 + stride;
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            for (var c = 0; c < n; c += Lanes)
            {
                if (next != null)
                {
                    // The next 4 rows' bytes at this column, as many as this step reads of these rows.
                    long offset = (long)c * TW.ElementSize;
                    Sse.Prefetch0(q0 + offset);
                    Sse.Prefetch0(q1 + offset);
                    Sse.Prefetch0(q2 + offset);
                    Sse.Prefetch0(q3 + offset);
                }
                Vector512<float> w0 = TW.Load(p0, c), w1 = TW.Load(p1, c), w2 = TW.Load(p2, c), w3 = TW.Load(p3, c);
                var v = Vector512.Load(x0 + c);
                a00 = Avx512F.FusedMultiplyAdd(w0, v, a00); a01 = Avx512F.FusedMultiplyAdd(w1, v, a01);
                a02 = Avx512F.FusedMultiplyAdd(w2, v, a02); a03 = Avx512F.FusedMultiplyAdd(w3, v, a03);
                v = Vector512.Load(x1 + c);
                a10 = Avx512F.FusedMultiplyAdd(w0, v, a10); a11 = Avx512F.FusedMultiplyAdd(w1, v, a11);
                a12 = Avx512F.FusedMultiplyAdd(w2, v, a12); a13 = Avx512F.FusedMultiplyAdd(w3, v, a13);
                v = Vector512.Load(x2 + c);
                a20 = Avx512F.FusedMultiplyAdd(w0, v, a20); a21 = Avx512F.FusedMultiplyAdd(w1, v, a21);
                a22 = Avx512F.FusedMultiplyAdd(w2, v, a22); a23 = Avx512F.FusedMultiplyAdd(w3, v, a23);
                v = Vector512.Load(x3 + c);
                a30 = Avx512F.FusedMultiplyAdd(w0, v, a30); a31 = Avx512F.FusedMultiplyAdd(w1, v, a31);
                a32 = Avx512F.FusedMultiplyAdd(w2, v, a32); a33 = Avx512F.FusedMultiplyAdd(w3, v, a33);
            }
            Store(y0, a00, a01, a02, a03, b, j);
            Store(y0 + outs, a10, a11, a12, a13, b, j);
            Store(y0 + 2 * outs, a20, a21, a22, a23, b, j);
            Store(y0 + 3 * outs, a30, a31, a32, a33, b, j);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Store(float* yr, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, float* b, int j)
        {
            yr[0] = Sum(a0) + (b == null ? 0 : b[j]);
            yr[1] = Sum(a1) + (b == null ? 0 : b[j + 1]);
            yr[2] = Sum(a2) + (b == null ? 0 : b[j + 2]);
            yr[3] = Sum(a3) + (b == null ? 0 : b[j + 3]);
        }
    }

    /// <summary>The 16 lanes summed in one fixed order (halving), the same for every caller.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Sum(Vector512<float> v)
    {
        var h = v.GetLower() + v.GetUpper();
        var q = h.GetLower() + h.GetUpper();
        var e = q + Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1));
        return e.ToScalar() + e.GetElement(1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void WidenBf16(ushort* source, float* target, long count)
    {
        long i = 0;
        for (; i + Lanes <= count; i += Lanes)
        {
            var raw = Avx512F.ConvertToVector512UInt32(Vector256.Load(source + i));
            Avx512F.ShiftLeftLogical(raw, 16).AsSingle().Store(target + i);
        }
        for (; i < count; i++) target[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
    }

    /// <summary>float32 to bfloat16, rounding to nearest even as PyTorch does (NaN kept NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void NarrowToBf16(float* source, ushort* target, long count)
    {
        for (long i = 0; i < count; i++) target[i] = ToBf16(source[i]);
    }

    /// <summary>One float32 to bfloat16, rounding to nearest even (NaN kept NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort ToBf16(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        var bits = BitConverter.SingleToUInt32Bits(value);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
