using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Decoding;

/// <summary>
/// Chooses tokens from rows of logits: the argmax at temperature 0; otherwise an inverse-CDF draw from the
/// filtered distribution (temperature, top-k, top-p) with a uniform number fixed by the seed and by which new
/// token the row would produce (the i-th new token always uses u_i). So a token depends only on the seed, its
/// index and the context before it, not on which decoder ran or which guesses it verified: with the same seed,
/// Jacobi and lookahead sampling give autoregressive sampling's tokens, and each token follows the model's
/// distribution (a guess is accepted exactly when the draw lands on it, with probability p(guess)). Exact up to
/// float rounding: a pass over k positions computes the same logits as k one-token passes only to within
/// ~1e-6, so a draw that lands that close to a CDF boundary can pick the neighbouring token (docs/reliability.md
/// measures how often).
/// </summary>
sealed class Sampler(GenerationOptions options)
{
    readonly ulong _seed = (ulong)(options.Seed ?? Random.Shared.NextInt64());

    /// <summary>Temperatures whose reciprocal overflows float (subnormals) are greedy outright; any other small
    /// temperature also ends at the argmax because <see cref="Probabilities"/> shifts before it divides.</summary>
    public bool Greedy => options.Temperature == 0 || float.IsInfinity(1f / options.Temperature);

    /// <summary>logits: [rows, vocab]; indices[r]: the index (0 = first new token) of the token row r chooses.</summary>
    public int[] Choose(Tensor logits, int[] indices)
    {
        if (Greedy) return Decoder.Argmax(logits);
        using var scope = NewDisposeScope();
        var vocab = logits.shape[^1];
        var cdf = Probabilities(logits, options).to(float64).cumsum(-1);
        var u = tensor(indices.Select(i => Uniform(_seed, i)).ToArray(), float64, logits.device).unsqueeze(1);
        var target = u * cdf.narrow(-1, vocab - 1, 1);
        // The first token whose cumulative mass exceeds the target: zero-probability tokens are never chosen.
        var ids = searchsorted(cdf, target, right: true).clamp_max(vocab - 1).squeeze(1);
        return ids.to(int64, CPU).data<long>().Select(x => (int)x).ToArray();
    }

    /// <summary>The distribution sampling draws from, per row of <paramref name="logits"/> ([..., vocab]): softmax
    /// of logits / temperature over the top-k tokens and the smallest most likely set whose mass reaches top-p.
    /// Filtered-out tokens get probability 0; the rest is not renormalised (the draw scales by the row's total).</summary>
    public static Tensor Probabilities(Tensor logits, GenerationOptions options)
    {
        // Shift by the row maximum first (softmax does not change): the largest score is then 0 and the others
        // at most 0, so a tiny temperature gives -inf for them and 0 for the argmax, never inf - inf = NaN.
        var scores = (logits - logits.amax([-1L], keepdim: true)) / options.Temperature;
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

    /// <summary>u_index in [0, 1): SplitMix64 of the seed and the index (independent across seeds and indices,
    /// unlike System.Random's first draws for nearby seeds).</summary>
    static double Uniform(ulong seed, int index) => (Mix(seed ^ Mix(0x9E3779B97F4A7C15UL * (ulong)(index + 1))) >> 11) * (1.0 / (1UL << 53));

    static ulong Mix(ulong x)
    {
        x = unchecked((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL);
        x = unchecked((x ^ (x >> 27)) * 0x94D049BB133111EBUL);
        return x ^ (x >> 31);
    }
}
