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
    readonly bool[] _textBelow; // every token below goes on with whole characters of plain string content

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

        // A node is "text below" when every token under it goes on from there with whole UTF-8 characters that a
        // JSON string holds as they are (no quote, backslash or control character): from string content at a
        // character boundary, such a subtree is accepted whole, without walking it.
        _textBelow = new bool[count];
        Array.Fill(_textBelow, true);
        foreach (var id in ids)
        {
            var text = _texts[id]!;
            var valid = StringContentStarts(text);
            var node = 0;
            for (var depth = 0; ; depth++)
            {
                if (!valid[depth]) _textBelow[node] = false;
                if (depth == text.Length) break;
                node = Child(node, text[depth]);
            }
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

    int Child(int node, byte b)
    {
        for (var e = _firstEdge[node]; e < _firstEdge[node + 1]; e++)
            if (_edgeByte[e] == b) return _edgeTarget[e];
        throw new InvalidOperationException("The trie lacks a token's byte.");
    }

    /// <summary>valid[d]: bytes d.. of <paramref name="text"/> are whole UTF-8 characters that a JSON string may hold
    /// unescaped (not '"', '\' or a control character). Same rules as the string recogniser.</summary>
    static bool[] StringContentStarts(byte[] text)
    {
        var valid = new bool[text.Length + 1];
        valid[text.Length] = true;
        for (var d = text.Length - 1; d >= 0; d--)
        {
            var b = text[d];
            var (length, low, high) = b switch
            {
                < 0x20 or (byte)'"' or (byte)'\\' => (0, 0, 0),
                < 0x80 => (1, 0, 0),
                >= 0xC2 and <= 0xDF => (2, 0x80, 0xBF),
                0xE0 => (3, 0xA0, 0xBF),
                0xED => (3, 0x80, 0x9F),
                >= 0xE1 and <= 0xEF => (3, 0x80, 0xBF),
                0xF0 => (4, 0x90, 0xBF),
                >= 0xF1 and <= 0xF3 => (4, 0x80, 0xBF),
                0xF4 => (4, 0x80, 0x8F),
                _ => (0, 0, 0),
            };
            var ok = length > 0 && d + length <= text.Length && valid[d + length];
            for (var k = 1; ok && k < length; k++)
                ok = text[d + k] >= (k == 1 ? low : 0x80) && text[d + k] <= (k == 1 ? high : 0xBF);
            valid[d] = ok;
        }
        return valid;
    }

    /// <summary>
    /// Marks in <paramref name="allowed"/> every token whose text the recogniser accepts from <paramref name="state"/>
    /// and that leaves at most <paramref name="budget"/> bytes to complete the value. Returns how many;
    /// <paramref name="budgetCut"/> tells whether the budget left out any token the grammar accepts, and
    /// <paramref name="need"/> the most bytes any allowed token leaves to complete the value (so the same mask
    /// holds for every budget from <paramref name="need"/> up when nothing was cut).
    /// </summary>
    internal int Mark(ByteState state, int budget, bool atStart, bool[] allowed, out bool budgetCut, out int need)
    {
        var walk = new MaskWalk(this, budget, allowed);
        walk.Walk(0, state);
        if (atStart)
        {
            // First token of an output: the ids whose text differs there are judged by their starting text.
            foreach (var (id, text) in _startTexts)
            {
                if (allowed[id]) { allowed[id] = false; walk.Marked--; }
                var after = text.Length == 0 ? null : state.Step(text);
                if (after is null) continue;
                if (after.MinRemaining <= budget)
                {
                    allowed[id] = true;
                    walk.Marked++;
                    walk.Need = Math.Max(walk.Need, after.MinRemaining);
                }
                else walk.BudgetCut = true;
            }
        }
        budgetCut = walk.BudgetCut;
        need = walk.Need;
        return walk.Marked;
    }

    internal int Mark(ByteState state, int budget, bool atStart, bool[] allowed) => Mark(state, budget, atStart, allowed, out _, out _);

    /// <summary>One mask's walk of the trie (a class, so the recursion shares its counters).</summary>
    sealed class MaskWalk(TokenVocabulary vocabulary, int budget, bool[] allowed)
    {
        public int Marked, Need;
        public bool BudgetCut;

        public void Walk(int node, ByteState state)
        {
            var v = vocabulary;
            var withinBudget = state.MinRemaining <= budget;
            if (withinBudget) Need = Math.Max(Need, state.MinRemaining);
            int first = v._slotStart[node], ending = node == 0 ? 0 : v._endingHere[node], end = v._slotEnd[node];
            if (ending > 0)
            {
                if (withinBudget) Allow(first, first + ending);
                else BudgetCut = true;
            }
            if (state.AbsorbsPlainText && v._textBelow[node])
            {
                // Every token below leaves the state as it is.
                if (withinBudget) Allow(first + ending, end);
                else if (end > first + ending) BudgetCut = true;
                return;
            }
            for (var e = v._firstEdge[node]; e < v._firstEdge[node + 1]; e++)
            {
                var next = state.Step(v._edgeByte[e]);
                if (next is not null) Walk(v._edgeTarget[e], next);
            }
        }

        void Allow(int from, int to)
        {
            for (var s = from; s < to; s++) allowed[vocabulary._slots[s]] = true;
            Marked += to - from;
        }
    }
}
