using Cllm.Model;

namespace Cllm.Decoding;

/// <summary>
/// One verification pass: the root (the last final token, not cached yet) followed by draft continuations
/// laid side by side: the Jacobi guesses first, then any pooled n-grams. Each draft sees the root and its
/// own earlier tokens, at the positions it would have if accepted. After the pass, <see cref="Greedy"/> or
/// <see cref="Sample"/> walks the drafts against the model's outputs and returns the tokens made final.
/// </summary>
sealed class DraftVerifier
{
    readonly List<int[]> _drafts;
    readonly int[] _base; // row of each draft's first token

    public DraftVerifier(int root, List<int[]> drafts)
    {
        _drafts = drafts;
        _base = new int[drafts.Count];
        var t = 1 + drafts.Sum(d => d.Length);
        Tokens = new int[t];
        Tokens[0] = root;
        var offsets = new int[t];
        var row = 1;
        for (var d = 0; d < drafts.Count; d++)
        {
            _base[d] = row;
            for (var j = 0; j < drafts[d].Length; j++, row++)
            {
                Tokens[row] = drafts[d][j];
                offsets[row] = j + 1;
            }
        }
        if (drafts.Count <= 1) return; // one causal run: the model's default layout
        var visible = new bool[t * t];
        visible[0] = true;
        for (var d = 0; d < drafts.Count; d++)
            for (var j = 0; j < drafts[d].Length; j++)
            {
                var r = _base[d] + j;
                visible[r * t] = true;
                for (var k = 0; k <= j; k++) visible[r * t + _base[d] + k] = true;
            }
        Layout = new PassLayout(offsets, visible);
    }

    /// <summary>The pass's input: root, then every draft's tokens.</summary>
    public int[] Tokens { get; }

    /// <summary>Null when there is at most one draft (a plain causal block).</summary>
    public PassLayout? Layout { get; }

    /// <summary>The row whose output follows token <paramref name="j"/> of draft <paramref name="d"/>.</summary>
    public int Row(int d, int j) => _base[d] + j;

    /// <summary>Greedy: follow the model's argmax while some draft agrees. Returns the final tokens (the accepted
    /// draft tokens and the model's token after them), the draft whose entries hold them, and how many were drafted.</summary>
    public (int[] Tokens, int Draft, int Accepted) Greedy(int[] argmax)
    {
        var accepted = new List<int>();
        var alive = Enumerable.Range(0, _drafts.Count).ToList();
        int row = 0, depth = 0, winner = 0;
        while (true)
        {
            var token = argmax[row];
            accepted.Add(token);
            alive.RemoveAll(d => _drafts[d].Length <= depth || _drafts[d][depth] != token);
            if (alive.Count == 0) break;
            winner = alive[0];
            row = Row(winner, depth++);
        }
        return (accepted.ToArray(), winner, depth);
    }

    /// <summary>
    /// Sampling, exact in distribution: at each depth the drafts' distinct next tokens are tried in order, each
    /// accepted with its probability under what is left of the model's distribution once the tokens tried before
    /// it are removed; when all fail, the final token is drawn from that remainder. This is a draw from the
    /// model's distribution asked one token at a time (speculative sampling with deterministic drafts), so every
    /// emitted token follows autoregressive sampling's distribution. <paramref name="probs"/>: rows x vocab.
    /// </summary>
    public (int[] Tokens, int Draft, int Accepted) Sample(float[] probs, int vocab, Random random)
    {
        var accepted = new List<int>();
        var alive = Enumerable.Range(0, _drafts.Count).ToList();
        var tried = new List<int>();
        int row = 0, depth = 0, winner = 0;
        while (true)
        {
            var p = probs.AsSpan(row * vocab, vocab);
            double total = 0;
            foreach (var x in p) total += x;
            double removed = 0;
            var chosen = -1;
            tried.Clear();
            foreach (var d in alive)
            {
                if (_drafts[d].Length <= depth) continue;
                var candidate = _drafts[d][depth];
                if (tried.Contains(candidate)) continue;
                var left = total - removed;
                if (left > 0 && random.NextDouble() * left < p[candidate]) { chosen = candidate; break; }
                removed += p[candidate];
                tried.Add(candidate);
            }
            if (chosen < 0)
            {
                accepted.Add(Draw(p, total - removed, tried, random));
                break;
            }
            accepted.Add(chosen);
            alive.RemoveAll(d => _drafts[d].Length <= depth || _drafts[d][depth] != chosen);
            winner = alive[0];
            row = Row(winner, depth++);
        }
        return (accepted.ToArray(), winner, depth);
    }

    /// <summary>A draw from <paramref name="p"/> without the <paramref name="excluded"/> tokens, whose mass is <paramref name="mass"/>.</summary>
    internal static int Draw(ReadOnlySpan<float> p, double mass, List<int> excluded, Random random)
    {
        var u = random.NextDouble() * mass;
        double sum = 0;
        var last = -1;
        for (var v = 0; v < p.Length; v++)
        {
            if (p[v] <= 0 || excluded.Contains(v)) continue;
            sum += p[v];
            last = v;
            if (u < sum) return v;
        }
        // Rounding left u at the very top: the last token with mass. (All mass excluded cannot happen: a token
        // holding all that is left is always accepted.)
        return last >= 0 ? last : throw new InvalidOperationException("The sampling distribution has no mass left.");
    }
}
