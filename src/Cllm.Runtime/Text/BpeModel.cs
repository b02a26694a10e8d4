using System.Collections.Concurrent;
using System.Text;

namespace Cllm.Text;

/// <summary>
/// Byte-pair encoding of one pre-tokenized word, with the rules the reference tokenizers share: the
/// adjacent pair of lowest rank merges first and, between equal ranks, the leftmost one (SentencePiece,
/// tiktoken and Hugging Face all do this; Microsoft.ML.Tokenizers 2.0.1's SentencePiece BPE does not).
/// </summary>
/// <remarks>
/// Ranks come either from a tokenizer.json merge list (rank = position) or from the vocabulary itself
/// (SentencePiece scores, tiktoken ranks: any pair whose concatenation is a piece may merge, ranked by
/// that piece), see <see cref="FromMerges"/> and <see cref="FromPieceRanks"/>.
/// </remarks>
internal sealed class BpeModel
{
    private const int CacheLimit = 50_000;
    private const int CacheableLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int Merged)> _pairs;
    private readonly int?[] _byteIds;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> pairs, int? unknownId, bool byteFallback, bool fuseUnknown, bool ignoreMerges)
    {
        _vocab = vocab;
        _pairs = pairs;
        UnknownId = unknownId;
        ByteFallback = byteFallback;
        FuseUnknown = fuseUnknown;
        IgnoreMerges = ignoreMerges;
        _byteIds = new int?[256];
        if (byteFallback)
        {
            for (int b = 0; b < 256; b++)
            {
                _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : null;
            }
        }
    }

    public IReadOnlyDictionary<string, int> Vocabulary => _vocab;

    public int? UnknownId { get; }

    /// <summary>Characters (or merged pieces) missing from the vocabulary become their UTF-8 bytes' "&lt;0xXX&gt;" pieces.</summary>
    public bool ByteFallback { get; }

    /// <summary>Consecutive unknown pieces become one unknown id.</summary>
    public bool FuseUnknown { get; }

    /// <summary>A word that is itself in the vocabulary is one token, whatever the merges would make (LLaMA-3).</summary>
    public bool IgnoreMerges { get; }

    /// <summary>A model whose pair ranks are the positions in a tokenizer.json merge list.</summary>
    public static BpeModel FromMerges(
        string path, Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        int? unknownId, bool byteFallback, bool fuseUnknown, bool ignoreMerges)
    {
        var pairs = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out int l) || !vocab.TryGetValue(right, out int r))
            {
                throw new InvalidDataException($"'{path}': merge #{rank} (\"{left}\", \"{right}\") uses a piece that is not in model.vocab.");
            }

            if (!vocab.TryGetValue(left + right, out int merged))
            {
                throw new InvalidDataException($"'{path}': merge #{rank} makes \"{left + right}\", which is not in model.vocab.");
            }

            // A repeated merge keeps its first (lowest) rank, as the reference's rank table does.
            pairs.TryAdd(Key(l, r), (rank, merged));
        }

        return new BpeModel(vocab, pairs, unknownId, byteFallback, fuseUnknown, ignoreMerges);
    }

    /// <summary>
    /// A model where a pair may merge whenever its concatenation is a mergeable piece, ranked by that
    /// piece: <paramref name="order"/> gives each mergeable piece its rank (lower merges first; equal
    /// ranks tie, and the leftmost pair wins).
    /// </summary>
    public static BpeModel FromPieceRanks(
        Dictionary<string, int> vocab, IEnumerable<(string Piece, int Rank)> order,
        int? unknownId, bool byteFallback, bool fuseUnknown, bool ignoreMerges)
    {
        var pairs = new Dictionary<long, (int, int)>();
        foreach (var (piece, rank) in order)
        {
            if (!vocab.TryGetValue(piece, out int merged))
            {
                continue;
            }

            // Split at code point boundaries only: a piece never starts in the middle of a character.
            for (int k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k]))
                {
                    continue;
                }

                if (vocab.TryGetValue(piece[..k], out int l) && vocab.TryGetValue(piece[k..], out int r))
                {
                    long key = Key(l, r);
                    if (!pairs.TryGetValue(key, out var existing) || existing.Item1 > rank)
                    {
                        pairs[key] = (rank, merged);
                    }
                }
            }
        }

        return new BpeModel(vocab, pairs, unknownId, byteFallback, fuseUnknown, ignoreMerges);
    }

    /// <summary>Appends the ids of one word (a pre-tokenized piece) to <paramref name="output"/>.</summary>
    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (IgnoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }

        if (_cache.TryGetValue(word, out var cached))
        {
            output.AddRange(cached);
            return;
        }

        var ids = Merge(word);
        if (word.Length <= CacheableLength)
        {
            if (_cache.Count >= CacheLimit)
            {
                _cache.Clear();
            }

            _cache.TryAdd(word, ids);
        }

        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        // Symbols: one per code point, as a doubly linked list over arrays. Id -1 marks a character
        // that is not in the vocabulary; it never merges and is resolved (bytes or unk) at the end.
        int n = 0;
        var ids = new int[word.Length];
        var starts = new int[word.Length + 1];
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            starts[n] = i;
            ids[n] = _vocab.TryGetValue(word.Substring(i, len), out int id) ? id : -1;
            n++;
            i += len;
        }

        starts[n] = word.Length;
        var ends = new int[n];
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++)
        {
            ends[i] = starts[i + 1];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        // Candidates ordered by (rank, position of the left symbol); stale entries are skipped when
        // popped (a symbol already merged away, or a neighbour that changed).
        var queue = new PriorityQueue<(int Left, int Right, int Merged), (int Rank, int Position)>();
        void Offer(int left)
        {
            int right = next[left];
            if (right >= 0 && ids[left] >= 0 && ids[right] >= 0 && _pairs.TryGetValue(Key(ids[left], ids[right]), out var p))
            {
                queue.Enqueue((left, right, p.Merged), (p.Rank, starts[left]));
            }
        }

        for (int i = 0; i + 1 < n; i++)
        {
            Offer(i);
        }

        var alive = new bool[n];
        Array.Fill(alive, true);
        while (queue.TryDequeue(out var c, out _))
        {
            if (!alive[c.Left] || !alive[c.Right] || next[c.Left] != c.Right ||
                !_pairs.TryGetValue(Key(ids[c.Left], ids[c.Right]), out var p) || p.Merged != c.Merged)
            {
                continue;
            }

            ids[c.Left] = c.Merged;
            ends[c.Left] = ends[c.Right];
            alive[c.Right] = false;
            next[c.Left] = next[c.Right];
            if (next[c.Left] >= 0)
            {
                prev[next[c.Left]] = c.Left;
            }

            if (prev[c.Left] >= 0)
            {
                Offer(prev[c.Left]);
            }

            Offer(c.Left);
        }

        var result = new List<int>(n);
        bool lastWasUnknown = false;
        for (int i = 0; i >= 0 && n > 0; i = next[i])
        {
            if (ids[i] >= 0)
            {
                result.Add(ids[i]);
                lastWasUnknown = UnknownId is int u && ids[i] == u;
                continue;
            }

            string text = word[starts[i]..ends[i]];
            if (ByteFallback && TryBytes(text, result))
            {
                lastWasUnknown = false;
                continue;
            }

            if (UnknownId is int unk && !(FuseUnknown && lastWasUnknown))
            {
                result.Add(unk);
            }

            lastWasUnknown = UnknownId is not null;
        }

        return [.. result];
    }

    private bool TryBytes(string text, List<int> output)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        foreach (byte b in bytes)
        {
            if (_byteIds[b] is null)
            {
                return false;
            }
        }

        foreach (byte b in bytes)
        {
            output.Add(_byteIds[b]!.Value);
        }

        return true;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;
}
