namespace Cllm.Decoding;

/// <summary>
/// Lookahead decoding's memory: n-grams seen in the prompt, the output and the Jacobi states, keyed by their
/// first token, at most <c>perKey</c> a key with the least recently used evicted first. A pass verifies the
/// n-grams that start with the last final token as draft continuations.
/// </summary>
sealed class NgramPool(int n, int perKey)
{
    readonly Dictionary<int, List<int[]>> _byFirst = [];

    public int N => n;

    /// <summary>The n-grams starting with <paramref name="first"/>, most recently used first.</summary>
    public IReadOnlyList<int[]> Get(int first) => _byFirst.TryGetValue(first, out var list) ? list : [];

    /// <summary>Adds (or refreshes) every n-gram of <paramref name="tokens"/> that starts at or after <paramref name="from"/>.</summary>
    public void AddAll(IReadOnlyList<int> tokens, int from = 0)
    {
        for (var i = Math.Max(0, from); i + n <= tokens.Count; i++)
        {
            var ngram = new int[n];
            for (var j = 0; j < n; j++) ngram[j] = tokens[i + j];
            Add(ngram);
        }
    }

    /// <summary>Puts <paramref name="ngram"/> first under its key, evicting the least recently used past the limit.</summary>
    public void Add(int[] ngram)
    {
        if (!_byFirst.TryGetValue(ngram[0], out var list)) _byFirst[ngram[0]] = list = new List<int[]>(perKey + 1);
        var at = list.FindIndex(x => x.AsSpan().SequenceEqual(ngram));
        if (at >= 0) { ngram = list[at]; list.RemoveAt(at); }
        list.Insert(0, ngram);
        if (list.Count > perKey) list.RemoveAt(list.Count - 1);
    }
}
