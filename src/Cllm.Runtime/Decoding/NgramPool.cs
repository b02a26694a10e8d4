namespace Cllm.Decoding;

/// <summary>
/// Lookahead decoding's memory: n-grams of the prompts, the outputs and the Jacobi states, keyed by their first
/// token, at most <see cref="PerKey"/> a key. Text n-grams (prompt and output) are kept most recently used first,
/// the least recently used evicted; Jacobi-state n-grams (the guesses, which are often wrong) only fill free room
/// and are the first to go. A pass verifies the n-grams that start with the last final token as draft branches.
/// <see cref="CllmEngine"/> keeps one pool across requests, so a request reuses the n-grams of the ones before it
/// (outputs are unchanged: every draft is verified).
/// </summary>
internal sealed class NgramPool
{
    readonly Dictionary<int, List<int[]>> _byFirst = [];

    public NgramPool(int n, int perKey)
    {
        if (n is < 2 or > 32) throw new ArgumentOutOfRangeException(nameof(n), n, "The n-gram size must be between 2 and 32.");
        if (perKey is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(perKey), perKey, "N-grams per key must be between 1 and 64.");
        (N, PerKey) = (n, perKey);
    }

    /// <summary>Tokens per n-gram.</summary>
    public int N { get; }

    /// <summary>N-grams kept per first token (G).</summary>
    public int PerKey { get; }

    /// <summary>N-grams held.</summary>
    public int Count => _byFirst.Values.Sum(l => l.Count);

    public void Clear() => _byFirst.Clear();

    /// <summary>The n-grams starting with <paramref name="first"/>, most recently used first.</summary>
    internal IReadOnlyList<int[]> Get(int first) => _byFirst.TryGetValue(first, out var list) ? list : [];

    /// <summary>Adds (or refreshes) every n-gram of <paramref name="tokens"/> that starts at or after <paramref name="from"/>.</summary>
    internal void AddAll(IReadOnlyList<int> tokens, int from = 0)
    {
        for (var i = Math.Max(0, from); i + N <= tokens.Count; i++) Add(Slice(tokens, i));
    }

    /// <summary>Puts <paramref name="ngram"/> first under its key, evicting the least recently used past the limit.</summary>
    internal void Add(int[] ngram)
    {
        var list = ListFor(ngram[0]);
        var at = list.FindIndex(x => x.AsSpan().SequenceEqual(ngram));
        if (at >= 0) { ngram = list[at]; list.RemoveAt(at); }
        list.Insert(0, ngram);
        if (list.Count > PerKey) list.RemoveAt(list.Count - 1);
    }

    /// <summary>Adds the n-grams of <paramref name="tokens"/> last under their keys, and only where a key has room.</summary>
    internal void AddWhereRoom(IReadOnlyList<int> tokens)
    {
        for (var i = 0; i + N <= tokens.Count; i++)
        {
            var list = ListFor(tokens[i]);
            if (list.Count >= PerKey) continue;
            var ngram = Slice(tokens, i);
            if (!list.Exists(x => x.AsSpan().SequenceEqual(ngram))) list.Add(ngram);
        }
    }

    List<int[]> ListFor(int first)
    {
        if (!_byFirst.TryGetValue(first, out var list)) _byFirst[first] = list = new List<int[]>(PerKey + 1);
        return list;
    }

    int[] Slice(IReadOnlyList<int> tokens, int start)
    {
        var ngram = new int[N];
        for (var j = 0; j < N; j++) ngram[j] = tokens[start + j];
        return ngram;
    }
}
