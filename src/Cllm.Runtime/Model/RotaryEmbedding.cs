using static TorchSharp.torch;

namespace Cllm.Model;

/// <summary>
/// Rotary position embedding in Hugging Face's layout (dimension j pairs with j + d/2), with cos/sin
/// tables computed once. Linear and llama3 scaling change the frequencies as Hugging Face does. Dynamic
/// (NTK) scaling uses one base, fitted to the stretched length original x factor, as vLLM does: Hugging
/// Face refits the base to every sequence length, so a token's rotation would depend on how many tokens
/// share its forward pass, keys cached earlier would keep stale rotations, and a multi-token Jacobi pass
/// could not reproduce one-token steps exactly.
/// Longrope (Phi-3) divides each frequency by its short or long factor and multiplies cos and sin by the
/// attention factor. Hugging Face picks the long factors when the positions of the current forward pass reach
/// past the original length, which has the same flaw; here one instance holds one choice, and the
/// <see cref="Transformer"/> picks by the context a KV cache holds (long when it exceeds the original length),
/// as llama.cpp does with its context size: every pass into one cache rotates alike.
/// </summary>
sealed class RotaryEmbedding : IDisposable
{
    readonly ModelConfig _config;
    readonly Device _device;
    readonly double[] _inverseFrequencies;
    readonly double _scale; // longrope's attention factor; 1 otherwise
    Tensor _cos, _sin; // [positions computed so far, headDim], float32
    readonly Dictionary<ScalarType, (Tensor Cos, Tensor Sin)> _cast = [];

    // Tables cover the positions passes have used so far (at least this many), not the model's maximum: a model
    // addressing 128k positions would otherwise hold 64 MB of tables per dtype for a 4k context.
    const int InitialPositions = 1024;

    /// <param name="longFactors">Longrope only: use the long factors (else the short ones).</param>
    public RotaryEmbedding(ModelConfig config, Device device, bool longFactors = false)
    {
        _config = config;
        _device = device;
        _inverseFrequencies = InverseFrequencies(config, longFactors);
        _scale = config.RopeScaling is { Type: "longrope" } s ? s.AttentionFactor : 1;
        using var scope = NewDisposeScope();
        var (cos, sin) = Tables(0, Math.Min(InitialPositions, TableLength), _inverseFrequencies);
        (_cos, _sin) = (cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
    }

    /// <summary>Positions the tables cover now.</summary>
    public int Computed => (int)_cos.shape[0];

    /// <summary>Extends the tables (doubling, up to the model's maximum) so they cover position <paramref name="last"/>.</summary>
    void Cover(int last)
    {
        if (last < Computed) return;
        lock (_cast)
        {
            if (last < Computed) return;
            var length = Math.Min(TableLength, Math.Max(last + 1, 2 * Computed));
            using var scope = NewDisposeScope();
            var (cos, sin) = Tables(0, length, _inverseFrequencies);
            var (oldCos, oldSin) = (_cos, _sin);
            (_cos, _sin) = (cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
            oldCos.Dispose();
            oldSin.Dispose();
            foreach (var (c, s) in _cast.Values) { c.Dispose(); s.Dispose(); }
            _cast.Clear();
        }
    }

    /// <summary>Frees the tables.</summary>
    public void Dispose()
    {
        lock (_cast)
        {
            _cos.Dispose();
            _sin.Dispose();
            foreach (var (c, s) in _cast.Values) { c.Dispose(); s.Dispose(); }
            _cast.Clear();
        }
    }

    /// <summary>Positions the model can address: dynamic scaling stretches the original length by its factor.</summary>
    public static int MaxPositions(ModelConfig config) => config.RopeScaling is { Type: "dynamic" } s
        ? (int)Math.Min(int.MaxValue / 2, (s.OriginalMaxPositions ?? config.MaxPositions) * s.Factor)
        : config.MaxPositions;

    int TableLength => MaxPositions(_config);

    /// <summary>cos and sin for positions start..start+count-1, [count, 1, headDim] (to broadcast over heads in
    /// [b, t, heads, d] layout), in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Slice(int start, int count, ScalarType dtype)
    {
        if (start + count > TableLength)
            throw new InvalidOperationException($"Position {start + count - 1} is past the {TableLength} positions this model addresses.");
        Cover(start + count - 1);
        var (cos, sin) = dtype == float32 ? (_cos, _sin) : Cast(dtype);
        return (cos.narrow(0, start, count), sin.narrow(0, start, count));
    }

    /// <summary>cos and sin for positions start + offsets[i], [offsets.Length, 1, headDim].</summary>
    public (Tensor Cos, Tensor Sin) Gather(int start, int[] offsets, ScalarType dtype)
    {
        var last = start + offsets.Max();
        if (last >= TableLength)
            throw new InvalidOperationException($"Position {last} is past the {TableLength} positions this model addresses.");
        Cover(last);
        var (cos, sin) = dtype == float32 ? (_cos, _sin) : Cast(dtype);
        var index = tensor(offsets.Select(o => (long)(start + o)).ToArray(), int64, cos.device);
        return (cos.index_select(0, index), sin.index_select(0, index));
    }

    (Tensor, Tensor) Cast(ScalarType dtype)
    {
        lock (_cast)
        {
            if (!_cast.TryGetValue(dtype, out var tables))
            {
                tables = (_cos.to(dtype).DetachFromDisposeScope(), _sin.to(dtype).DetachFromDisposeScope());
                _cast[dtype] = tables;
            }
            return tables;
        }
    }

    /// <summary>x: [b, t, heads, d]; cos/sin: [t, 1, d].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var rotated = cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        return x * cos + rotated * sin;
    }

    /// <summary>Tables in float32 on the model's device; they belong to the caller's dispose scope.</summary>
    (Tensor, Tensor) Tables(int start, int count, double[] inverseFrequencies)
    {
        var positions = arange(start, start + count, float64).unsqueeze(1);
        var freqs = positions * tensor(inverseFrequencies, float64).unsqueeze(0);
        var angles = cat([freqs, freqs], -1).unsqueeze(1);
        return ((angles.cos() * _scale).to(float32, _device), (angles.sin() * _scale).to(float32, _device));
    }

    static double[] InverseFrequencies(ModelConfig config, bool longFactors)
    {
        var d = config.HeadDim;
        var theta = config.RopeTheta;
        var scaling = config.RopeScaling;
        if (scaling is { Type: "dynamic" })
            // HF's formula at sequence length original x factor: base * (factor * L / original - (factor - 1)) ^ (d / (d - 2)).
            theta *= Math.Pow(scaling.Factor * scaling.Factor - (scaling.Factor - 1), d / (d - 2.0));
        var inv = new double[d / 2];
        for (var j = 0; j < inv.Length; j++) inv[j] = 1.0 / Math.Pow(theta, 2.0 * j / d);

        if (scaling is { Type: "linear" })
            for (var j = 0; j < inv.Length; j++) inv[j] /= scaling.Factor;
        else if (scaling is { Type: "longrope" })
        {
            var divisors = longFactors ? scaling.LongFactor! : scaling.ShortFactor!;
            for (var j = 0; j < inv.Length; j++) inv[j] /= divisors[j];
        }
        else if (scaling is { Type: "llama3" })
        {
            // Long wavelengths are stretched by the factor, short ones kept, the band between interpolated.
            double original = scaling.OriginalMaxPositions!.Value;
            double lowWavelength = original / scaling.LowFreqFactor, highWavelength = original / scaling.HighFreqFactor;
            for (var j = 0; j < inv.Length; j++)
            {
                var wavelength = 2 * Math.PI / inv[j];
                if (wavelength > lowWavelength) inv[j] /= scaling.Factor;
                else if (wavelength >= highWavelength)
                {
                    var smooth = (original / wavelength - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                    inv[j] = (1 - smooth) * inv[j] / scaling.Factor + smooth * inv[j];
                }
            }
        }
        return inv;
    }
}
