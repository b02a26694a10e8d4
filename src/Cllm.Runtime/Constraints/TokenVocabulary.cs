using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using Cllm.Text;

namespace Cllm.Constraints;

/// <summary>
/// The bytes each token id adds to the generated text, and a trie over them, so a token mask is one walk of
/// the trie from the recogniser's state that skips every subtree whose prefix is refused. Built once per
/// tokenizer (<see cref="For"/> caches it). Markers (BOS, EOS, role markers) have no text: a constraint never
/// lets them into the text, and allows the stop ids once the text is complete.
/// </summary>
public sealed partial class TokenVocabulary
{
    static readonly ConditionalWeakTable<TextTokenizer, TokenVocabulary> Cache = [];

    readonly byte[]?[] _texts;
    readonly Dictionary<int, byte[]> _startTexts;

    // The trie: node 0 is the root. Children of node n: edges [_firstEdge[n], _firstEdge[n + 1]).
    // Token ids sorted by their bytes: node n's subtree holds slots [_slotStart[n], _slotEnd[n]), and the first
    // _endingHere[n] of them are tokens whose text ends at n.
    readonly int[] _firstEdge, _slotStart, _slotEnd, _endingHere, _edgeTarget, _slots;
    readonly byte[] _edgeByte;
    readonly bool[] _plainBelow; // every byte below the node is printable ASCII other than '"' and '\'

    /// <param name="texts">Per id, the bytes the token adds mid-text; null for markers (never text).</param>
    /// <param name="startTexts">Ids whose text differs as the first token of an output (SentencePiece drops the
    /// leading space of the first piece).</param>
    public TokenVocabulary(IReadOnlyList<byte[]?> texts, IReadOnlyDictionary<int, byte[]>? startTexts = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        _texts = [.. texts];
        _startTexts = startTexts?.ToDictionary() ?? [];
        var ids = Enumerable.Range(0, _texts.Length).Where(i => _texts[i] is { Length: > 0 }).ToArray();
        Array.Sort(ids, (a, b) => _texts[a].AsSpan().SequenceCompareTo(_texts[b]));
        _slots = ids;

        var slotStart = new List<int>();
        var slotEnd = new List<int>();
        var endingHere = new List<int>();
        var children = new List<List<(byte, int)>>();
        int NewNode(int lo, int hi)
        {
            slotStart.Add(lo);
            slotEnd.Add(hi);
            endingHere.Add(0);
            children.Add([]);
            return slotStart.Count - 1;
        }

        // Iterative depth-first build over the sorted ids: (node, lo, hi, depth).
        var work = new Stack<(int Node, int Lo, int Hi, int Depth)>();
        work.Push((NewNode(0, ids.Length), 0, ids.Length, 0));
        while (work.Count > 0)
        {
            var (node, lo, hi, depth) = work.Pop();
            var i = lo;
            while (i < hi && _texts[ids[i]]!.Length == depth) i++;
            endingHere[node] = i - lo;
            var groups = new List<(byte, int, int)>();
            while (i < hi)
            {
                var b = _texts[ids[i]]![depth];
                var j = i;
                while (j < hi && _texts[ids[j]]![depth] == b) j++;
                groups.Add((b, i, j));
                i = j;
            }
            foreach (var (b, start, end) in groups)
            {
                var child = NewNode(start, end);
                children[node].Add((b, child));
                work.Push((child, start, end, depth + 1));
            }
        }

        var count = slotStart.Count;
        _slotStart = [.. slotStart];
        _slotEnd = [.. slotEnd];
        _endingHere = [.. endingHere];
        _firstEdge = new int[count + 1];
        var edges = children.Sum(c => c.Count);
        _edgeByte = new byte[edges];
        _edgeTarget = new int[edges];
        var e = 0;
        for (var n = 0; n < count; n++)
        {
            _firstEdge[n] = e;
            foreach (var (b, child) in children[n])
            {
                _edgeByte[e] = b;
                _edgeTarget[e++] = child;
            }
        }
        _firstEdge[count] = e;

        // Children are numbered after their parents, so one backward sweep sees every child first.
        _plainBelow = new bool[count];
        for (var n = count - 1; n >= 0; n--)
        {
            var plain = true;
            for (var k = _firstEdge[n]; k < _firstEdge[n + 1] && plain; k++)
                plain = IsPlain(_edgeByte[k]) && _plainBelow[_edgeTarget[k]];
            _plainBelow[n] = plain;
        }
        TrieNodes = count;
    }

    /// <summary>Token ids covered (the largest id + 1).</summary>
    public int Size => _texts.Length;

    /// <summary>Nodes of the trie (a measure of the work a mask can take).</summary>
    public int TrieNodes { get; }

    /// <summary>The bytes token <paramref name="id"/> adds to the text (first token of an output when
    /// <paramref name="atStart"/>); null for a marker or an id outside the vocabulary.</summary>
    public byte[]? TextOf(int id, bool atStart = false)
    {
        if ((uint)id >= (uint)_texts.Length) return null;
        return atStart && _startTexts.TryGetValue(id, out var start) ? start : _texts[id];
    }

    /// <summary>
    /// The vocabulary of a tokenizer, cached per tokenizer. Byte-level BPE and tiktoken tokens map their symbols
    /// back to raw bytes (a token may hold part of a UTF-8 character); SentencePiece pieces are decoded after a
    /// guard piece (their text mid-output) and alone (their text as the first token), byte-fallback pieces
    /// (&lt;0xE2&gt;) are their raw byte.
    /// </summary>
    public static TokenVocabulary For(TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return Cache.GetValue(tokenizer, Build);
    }

    static TokenVocabulary Build(TextTokenizer tokenizer)
    {
        var texts = new byte[]?[tokenizer.VocabularySize];
        var start = new Dictionary<int, byte[]>();
        var guard = tokenizer.StreamGuard;
        var guardText = guard is { } g ? tokenizer.Decode([g.GuardId]) : "";
        for (var id = 0; id < texts.Length; id++)
        {
            var token = tokenizer.IdToToken(id);
            if (token is null || tokenizer.ControlIds.Contains(id)) continue;
            if (tokenizer.Kind != TextTokenizer.SentencePieceKind)
            {
                texts[id] = ByteLevelAlphabet.TryToBytes(token, out var bytes) ? bytes : Encoding.UTF8.GetBytes(token);
                continue;
            }
            var byteMatch = BytePiece().Match(token);
            if (byteMatch.Success)
            {
                texts[id] = [Convert.ToByte(byteMatch.Groups[1].Value, 16)];
                continue;
            }
            if (tokenizer.Decode([id], skipSpecial: true).Length == 0 && tokenizer.Decode([id]).Length > 0)
            {
                // An added token that is text, not a marker (a tool-call tag): its own content.
                texts[id] = Encoding.UTF8.GetBytes(token);
                continue;
            }
            var mid = guard is { } gg ? tokenizer.Decode([gg.GuardId, id])[guardText.Length..] : token.Replace('\u2581', ' ');
            var alone = tokenizer.Decode([id]);
            if (mid.Contains('\uFFFD') || alone.Contains('\uFFFD')) (mid, alone) = (token.Replace('\u2581', ' '), token.Replace('\u2581', ' '));
            texts[id] = Encoding.UTF8.GetBytes(mid);
            if (alone != mid) start[id] = Encoding.UTF8.GetBytes(alone);
        }
        return new TokenVocabulary(texts, start);
    }

    [GeneratedRegex("^<0x([0-9A-Fa-f]{2})>$")]
    private static partial Regex BytePiece();

    static bool IsPlain(byte b) => b is >= 0x20 and < 0x7F and not (byte)'"' and not (byte)'\\';

    /// <summary>
    /// Marks in <paramref name="allowed"/> every token whose text the recogniser accepts from <paramref name="state"/>
    /// and that leaves at most <paramref name="budget"/> bytes to complete the value. Returns how many.
    /// </summary>
    internal int Mark(ByteState state, int budget, bool atStart, bool[] allowed)
    {
        var marked = Walk(0, state, budget, allowed);
        if (!atStart || _startTexts.Count == 0) return marked;
        // First token of an output: the ids whose text differs there are judged by their starting text.
        foreach (var (id, text) in _startTexts)
        {
            if (allowed[id]) { allowed[id] = false; marked--; }
            var after = text.Length == 0 ? null : state.Step(text);
            if (after is not null && after.MinRemaining <= budget) { allowed[id] = true; marked++; }
        }
        return marked;
    }

    int Walk(int node, ByteState state, int budget, bool[] allowed)
    {
        var marked = 0;
        var withinBudget = state.MinRemaining <= budget;
        if (node != 0 && withinBudget)
            for (var s = _slotStart[node]; s < _slotStart[node] + _endingHere[node]; s++) { allowed[_slots[s]] = true; marked++; }
        if (state.AbsorbsPlainText && _plainBelow[node])
        {
            // Every token below leaves the state as it is.
            if (!withinBudget) return marked;
            for (var s = _slotStart[node] + _endingHere[node]; s < _slotEnd[node]; s++) allowed[_slots[s]] = true;
            return marked + _slotEnd[node] - _slotStart[node] - _endingHere[node];
        }
        for (var e = _firstEdge[node]; e < _firstEdge[node + 1]; e++)
        {
            var next = state.Step(_edgeByte[e]);
            if (next is not null) marked += Walk(_edgeTarget[e], next, budget, allowed);
        }
        return marked;
    }
}
