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
        var scores = logits / _options.Temperature;
        if (_options.TopK > 0 && _options.TopK < scores.shape[0])
        {
            var kth = scores.topk(_options.TopK).values[-1];
            scores = scores.masked_fill(scores < kth, float.NegativeInfinity);
        }
        var probs = scores.softmax(-1);
        if (_options.TopP < 1)
        {
            // Keep the smallest set of most likely tokens whose mass reaches TopP (the first always stays).
            var (sorted, order) = probs.sort(descending: true);
            var before = sorted.cumsum(0) - sorted;
            sorted = sorted.masked_fill(before >= _options.TopP, 0);
            probs = zeros_like(probs).scatter_(0, order, sorted);
        }
        return (int)multinomial(probs, 1, generator: _generator).item<long>();
    }

    public void Dispose() => _generator?.Dispose();
}
