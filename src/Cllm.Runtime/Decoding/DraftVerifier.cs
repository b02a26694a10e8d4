using Cllm.Model;

namespace Cllm.Decoding;

/// <summary>
/// One verification pass: the root (the last final token, not cached yet) followed by draft continuations
/// laid side by side: the Jacobi guesses first, then any pooled n-grams. Each draft sees the root and its
/// own earlier tokens, at the positions it would have if accepted. After the pass, <see cref="Walk"/> follows the
/// drafts against the model's choices and returns the tokens made final.
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
        Depths = offsets;
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

    /// <summary>How many tokens past the root the token each row chooses lies (0 for the root's row).</summary>
    public int[] Depths { get; }

    /// <summary>
    /// Follows the model while some draft agrees: <paramref name="chosen"/>[row] is the token the model picks after
    /// that row (argmax, or a seeded draw that depends only on the token's index, see <see cref="Sampler"/>), and a
    /// draft survives a depth when its token there is the one chosen. Returns the final tokens (the accepted draft
    /// tokens and the model's token after them), the draft whose cache entries hold them, and how many were drafted.
    /// </summary>
    public (int[] Tokens, int Draft, int Accepted) Walk(int[] chosen) => Walk(row => chosen[row]);

    /// <summary>
    /// <see cref="Walk(int[])"/> with the model's choice made row by row, in order along the accepted prefix, so a
    /// constrained choice can depend on the tokens before it; <paramref name="choose"/> returns -1 where nothing may
    /// follow (the walk then ends without a token of that row).
    /// </summary>
    public (int[] Tokens, int Draft, int Accepted) Walk(Func<int, int> choose)
    {
        var accepted = new List<int>();
        var alive = Enumerable.Range(0, _drafts.Count).ToList();
        int row = 0, depth = 0, winner = 0;
        while (true)
        {
            var token = choose(row);
            if (token < 0) break;
            accepted.Add(token);
            alive.RemoveAll(d => _drafts[d].Length <= depth || _drafts[d][depth] != token);
            if (alive.Count == 0) break;
            winner = alive[0];
            row = Row(winner, depth++);
        }
        return (accepted.ToArray(), winner, depth);
    }
}
