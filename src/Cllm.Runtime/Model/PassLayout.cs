namespace Cllm.Model;

/// <summary>
/// Where the tokens of one forward pass sit and what they see, for passes that are not one causal run:
/// token i is at position start + <see cref="Offsets"/>[i] and attends to token j of the same pass when
/// <see cref="Visible"/>[i * T + j] (always to the cache before the pass). Lookahead decoding lays a Jacobi
/// block and several n-gram branches side by side this way, each branch seeing only itself and the root.
/// </summary>
public sealed record PassLayout(int[] Offsets, bool[] Visible)
{
    internal void Check(int tokens)
    {
        if (Offsets.Length != tokens || Visible.Length != tokens * tokens)
            throw new ArgumentException(
                $"The pass layout describes {Offsets.Length} tokens ({Visible.Length} visibility entries) but the pass has {tokens}.");
        for (var i = 0; i < tokens; i++)
        {
            if (Offsets[i] < 0) throw new ArgumentException($"Pass layout offset {Offsets[i]} of token {i} is negative.");
            if (!Visible[i * tokens + i]) throw new ArgumentException($"Token {i} of the pass layout does not see itself.");
        }
    }
}
