using System.Text;

namespace Cllm.Text;

/// <summary>Splits one normalized piece of text into smaller pieces (a Hugging Face pre-tokenizer step).</summary>
/// <param name="sectionIndex">Which part of the text between added tokens this is (0 = the first).</param>
internal delegate void PreTokenizeStep(string piece, int sectionIndex, List<string> output);

/// <summary>Rewrites the token strings of a decode (a Hugging Face decoder step).</summary>
internal delegate List<string> DecodeStep(List<string> tokens);

/// <summary>An added token (tokenizer.json <c>added_tokens</c>) with the flags that change how it is matched.</summary>
internal sealed record AddedTokenSpec(int Id, string Content, bool Special, bool LeftStrip, bool RightStrip, bool Normalized);

/// <summary>
/// The encoding pipeline of a Hugging Face tokenizer, in the reference's order: cut out added tokens
/// (stripping neighbouring whitespace where they ask), normalize each remaining section, cut out added
/// tokens that match only after normalization, pre-tokenize, run BPE on each piece, then wrap the
/// result in the post-processor's template when special tokens are wanted. Decoding maps ids back to
/// token strings and runs the decoder steps.
/// </summary>
internal sealed class TokenizerPipeline
{
    private readonly Func<string, string>? _normalizer;
    private readonly IReadOnlyList<PreTokenizeStep> _preTokenizer;
    private readonly BpeModel _model;
    private readonly AddedTokenMatcher _rawAdded;
    private readonly AddedTokenMatcher _normalizedAdded;
    private readonly Dictionary<string, AddedTokenSpec> _addedByText = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<DecodeStep> _decoder;
    private readonly string[] _idToToken;

    public TokenizerPipeline(
        BpeModel model,
        IReadOnlyList<AddedTokenSpec> addedTokens,
        Func<string, string>? normalizer,
        IReadOnlyList<PreTokenizeStep> preTokenizer,
        IReadOnlyList<int>? prefix,
        IReadOnlyList<int>? suffix,
        IReadOnlyList<DecodeStep> decoder)
    {
        _model = model;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _decoder = decoder;
        Prefix = prefix ?? [];
        Suffix = suffix ?? [];
        AddedTokens = addedTokens;

        var raw = new List<string>();
        var normalized = new List<string>();
        foreach (var a in addedTokens)
        {
            _addedByText[a.Content] = a;
            if (a.Normalized && normalizer is not null)
            {
                string n = normalizer(a.Content);
                _addedByText.TryAdd(n, a);
                normalized.Add(n);
            }
            else
            {
                raw.Add(a.Content);
            }
        }

        _rawAdded = new AddedTokenMatcher(raw);
        _normalizedAdded = new AddedTokenMatcher(normalized);

        int size = Math.Max(
            model.Vocabulary.Count == 0 ? 0 : model.Vocabulary.Values.Max() + 1,
            addedTokens.Count == 0 ? 0 : addedTokens.Max(a => a.Id) + 1);
        _idToToken = new string[size];
        foreach (var (token, id) in model.Vocabulary)
        {
            _idToToken[id] ??= token;
        }

        foreach (var a in addedTokens)
        {
            _idToToken[a.Id] = a.Content;
        }
    }

    public BpeModel Model => _model;

    public IReadOnlyList<AddedTokenSpec> AddedTokens { get; }

    /// <summary>Ids the post-processor puts before the text when special tokens are wanted (e.g. BOS).</summary>
    public IReadOnlyList<int> Prefix { get; }

    /// <summary>Ids the post-processor puts after the text when special tokens are wanted (e.g. EOS).</summary>
    public IReadOnlyList<int> Suffix { get; }

    /// <summary>One more than the largest id.</summary>
    public int Size => _idToToken.Length;

    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <summary>Text to ids, without the post-processor's special tokens.</summary>
    public List<int> EncodeText(string text)
    {
        var ids = new List<int>();
        var sections = _rawAdded.Split(text);
        ApplyStrips(sections);
        var pieces = new List<string>();
        var next = new List<string>();
        for (int sectionIndex = 0; sectionIndex < sections.Count; sectionIndex++)
        {
            var (section, isAdded) = sections[sectionIndex];
            if (section.Length == 0)
            {
                continue;
            }

            if (isAdded)
            {
                ids.Add(_addedByText[section].Id);
                continue;
            }

            string normalized = _normalizer is null ? section : _normalizer(section);
            if (normalized.Length == 0)
            {
                continue;
            }

            var subsections = _normalizedAdded.Split(normalized);
            ApplyStrips(subsections);
            foreach (var (sub, subIsAdded) in subsections)
            {
                if (sub.Length == 0)
                {
                    continue;
                }

                if (subIsAdded)
                {
                    ids.Add(_addedByText[sub].Id);
                    continue;
                }

                pieces.Clear();
                pieces.Add(sub);
                foreach (var step in _preTokenizer)
                {
                    next.Clear();
                    foreach (string p in pieces)
                    {
                        step(p, sectionIndex, next);
                    }

                    (pieces, next) = (next, pieces);
                }

                foreach (string p in pieces)
                {
                    _model.Encode(p, ids);
                }
            }
        }

        return ids;
    }

    /// <summary>
    /// Text to ids with no added-token matching: markers in the text go through the normalizer, pre-tokenizer and
    /// BPE like any other characters. <paramref name="startsText"/>: the run begins the input (section 0, where
    /// SentencePiece-style pre-tokenizers add their leading "▁"); otherwise it follows an added token.
    /// </summary>
    public List<int> EncodeOrdinary(string text, bool startsText)
    {
        var ids = new List<int>();
        string normalized = _normalizer is null ? text : _normalizer(text);
        if (normalized.Length == 0)
        {
            return ids;
        }

        var pieces = new List<string> { normalized };
        var next = new List<string>();
        foreach (var step in _preTokenizer)
        {
            next.Clear();
            foreach (string p in pieces)
            {
                step(p, startsText ? 0 : 1, next);
            }

            (pieces, next) = (next, pieces);
        }

        foreach (string p in pieces)
        {
            _model.Encode(p, ids);
        }

        return ids;
    }

    /// <summary>Ids to text; <paramref name="skip"/> leaves out ids (e.g. special tokens) before decoding.</summary>
    public string Decode(IEnumerable<int> ids, Func<int, bool>? skip = null)
    {
        var tokens = new List<string>();
        foreach (int id in ids)
        {
            if (skip is not null && skip(id))
            {
                continue;
            }

            string? token = IdToToken(id);
            if (token is not null)
            {
                tokens.Add(token);
            }
        }

        foreach (var step in _decoder)
        {
            tokens = step(tokens);
        }

        return string.Concat(tokens);
    }

    private void ApplyStrips(List<(string Text, bool IsAdded)> sections)
    {
        for (int i = 0; i < sections.Count; i++)
        {
            if (!sections[i].IsAdded)
            {
                continue;
            }

            var a = _addedByText[sections[i].Text];
            if (a.LeftStrip && i > 0 && !sections[i - 1].IsAdded)
            {
                sections[i - 1] = (sections[i - 1].Text.TrimEnd(), false);
            }

            if (a.RightStrip && i + 1 < sections.Count && !sections[i + 1].IsAdded)
            {
                sections[i + 1] = (sections[i + 1].Text.TrimStart(), false);
            }
        }
    }

    /// <summary>Longest-match search for added tokens, scanning left to right.</summary>
    private sealed class AddedTokenMatcher
    {
        private readonly Dictionary<char, string[]> _byFirstChar;

        public AddedTokenMatcher(IEnumerable<string> contents)
        {
            _byFirstChar = contents.Where(c => c.Length > 0).Distinct(StringComparer.Ordinal)
                .GroupBy(c => c[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(c => c.Length).ToArray());
        }

        public List<(string Text, bool IsAdded)> Split(string text)
        {
            var result = new List<(string, bool)>();
            if (_byFirstChar.Count == 0)
            {
                result.Add((text, false));
                return result;
            }

            int start = 0;
            for (int i = 0; i < text.Length;)
            {
                string? match = null;
                if (_byFirstChar.TryGetValue(text[i], out var candidates))
                {
                    foreach (string c in candidates)
                    {
                        if (string.CompareOrdinal(text, i, c, 0, c.Length) == 0 && i + c.Length <= text.Length)
                        {
                            match = c;
                            break;
                        }
                    }
                }

                if (match is null)
                {
                    i++;
                    continue;
                }

                if (i > start)
                {
                    result.Add((text[start..i], false));
                }

                result.Add((match, true));
                i += match.Length;
                start = i;
            }

            if (start < text.Length)
            {
                result.Add((text[start..], false));
            }

            return result;
        }
    }

    /// <summary>Bytes of "&lt;0xXX&gt;" pieces, or -1.</summary>
    internal static int ByteOfPiece(string token)
    {
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
            byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
        {
            return b;
        }

        return -1;
    }

    /// <summary>Decodes UTF-8 as the reference does: invalid sequences become U+FFFD.</summary>
    internal static string Utf8(List<byte> bytes) => Encoding.UTF8.GetString(bytes.ToArray());
}
