namespace Cllm.Tests.Decoding;

/// <summary>
/// The sampling distribution by the textbook definitions, in doubles, written apart from the sampler so that
/// tests check the sampler against it: divide the logits by the temperature; keep the k highest (ties with
/// the k-th kept); softmax over what is kept; sort by probability and keep the shortest most likely prefix
/// whose mass reaches top-p (the token that crosses p is kept); renormalise.
/// </summary>
static class ReferenceDistribution
{
    public static double[] Of(double[] logits, double temperature, int topK, double topP)
    {
        var scores = logits.Select(z => z / temperature).ToArray();
        var keep = new bool[scores.Length];
        Array.Fill(keep, true);
        if (topK > 0 && topK < scores.Length)
        {
            var kth = scores.OrderByDescending(s => s).ElementAt(topK - 1);
            for (var i = 0; i < scores.Length; i++) keep[i] = scores[i] >= kth;
        }

        var max = Enumerable.Range(0, scores.Length).Where(i => keep[i]).Max(i => scores[i]);
        var p = new double[scores.Length];
        for (var i = 0; i < scores.Length; i++) p[i] = keep[i] ? Math.Exp(scores[i] - max) : 0;
        Normalise(p);

        if (topP < 1)
        {
            var order = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ToArray();
            double mass = 0;
            var kept = 0;
            while (kept < order.Length && (kept == 0 || mass < topP)) mass += p[order[kept++]];
            for (var r = kept; r < order.Length; r++) p[order[r]] = 0;
            Normalise(p);
        }
        return p;
    }

    static void Normalise(double[] p)
    {
        var total = p.Sum();
        for (var i = 0; i < p.Length; i++) p[i] /= total;
    }
}
