using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Decoding;

/// <summary>Picks the next token from one position's logits: argmax at temperature 0, otherwise a seeded draw
/// after temperature, top-k and top-p (nucleus) filtering.</summary>
sealed class Sampler : IDisposable
{
    readonly GenerationOptions _options;
    readonly Generator? _generator;

    public Sampler(GenerationOptions options, Device device)
    {
        _options = options;
        if (options.Temperature > 0)
            _generator = new Generator((ulong)(options.Seed ?? Random.Shared.NextInt64()), device);
    }

    /// <summary>logits: [vocab], float32.</summary>
    public int Next(Tensor logits)
    {
        if (_generator is null) return (int)logits.argmax().item<long>();
        return (int)multinomial(Probabilities(logits, _options), 1, generator: _generator).item<long>();
    }

    /// <summary>The distribution sampling draws from, per row of <paramref name="logits"/> ([..., vocab]): softmax
    /// of logits / temperature over the top-k tokens and the smallest most likely set whose mass reaches top-p.
    /// Filtered-out tokens get probability 0; the rest is not renormalised after top-p (a draw need not care).</summary>
    public static Tensor Probabilities(Tensor logits, GenerationOptions options)
    {
        var scores = logits / options.Temperature;
        if (options.TopK > 0 && options.TopK < scores.shape[^1])
        {
            var kth = scores.topk(options.TopK).values.narrow(-1, options.TopK - 1, 1);
            scores = scores.masked_fill(scores < kth, float.NegativeInfinity);
        }
        var probs = scores.softmax(-1);
        if (options.TopP < 1)
        {
            // Keep the smallest set of most likely tokens whose mass reaches TopP (the first always stays).
            var (sorted, order) = probs.sort(-1, descending: true);
            var before = sorted.cumsum(-1) - sorted;
            sorted = sorted.masked_fill(before >= options.TopP, 0);
            probs = zeros_like(probs).scatter_(-1, order, sorted);
        }
        return probs;
    }

    public void Dispose() => _generator?.Dispose();
}
