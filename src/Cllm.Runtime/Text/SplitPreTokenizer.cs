using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Cllm.Text;

/// <summary>
/// Hugging Face pre-tokenization for byte-level BPE: cut out added/special tokens first, then apply a
/// chain of <c>Split</c> regexes with "Isolated" behaviour (matches and the text between matches both
/// become pieces), each regex seeing one piece at a time as HF does.
/// </summary>
/// <remarks>
/// <see cref="RegexPreTokenizer"/> is not enough here: it drops text between matches, which is only
/// harmless for regexes that match every character (GPT-2, Qwen2, LLaMA-3) but not for chains such as
/// DeepSeek-Coder's. Special tokens must come out as whole pieces, because BpeTokenizer only maps a
/// piece to a special id when the piece is exactly the special token's text.
/// </remarks>
internal sealed class SplitPreTokenizer : PreTokenizer
{
    private readonly IReadOnlyList<Regex> _splits;
    private readonly Regex? _specials;

    public SplitPreTokenizer(IReadOnlyList<Regex> splits, IEnumerable<string> specialTokens)
    {
        _splits = splits;
        // Longest first: .NET alternation takes the first alternative that matches.
        var alternatives = specialTokens.Where(s => s.Length > 0).Distinct(StringComparer.Ordinal)
            .OrderByDescending(s => s.Length).ThenBy(s => s, StringComparer.Ordinal).Select(Regex.Escape).ToList();
        _specials = alternatives.Count == 0 ? null : new Regex(string.Join("|", alternatives), RegexOptions.CultureInvariant);
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text ?? string.Empty);

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    private List<(int Offset, int Length)> Split(string text)
    {
        var result = new List<(int, int)>();
        int pos = 0;
        if (_specials is not null)
        {
            foreach (var m in _specials.EnumerateMatches(text))
            {
                SplitSegment(text, pos, m.Index - pos, result);
                result.Add((m.Index, m.Length));
                pos = m.Index + m.Length;
            }
        }

        SplitSegment(text, pos, text.Length - pos, result);
        return result;
    }

    private void SplitSegment(string text, int start, int length, List<(int, int)> result)
    {
        if (length == 0)
        {
            return;
        }

        var pieces = new List<(int Start, int Length)> { (start, length) };
        foreach (var regex in _splits)
        {
            var next = new List<(int, int)>(pieces.Count * 2);
            foreach (var (pStart, pLength) in pieces)
            {
                // Matching on the piece alone keeps look-arounds such as \s+(?!\S) inside it, like HF.
                int cursor = 0;
                foreach (var m in regex.EnumerateMatches(text.AsSpan(pStart, pLength)))
                {
                    if (m.Length == 0)
                    {
                        continue;
                    }

                    if (m.Index > cursor)
                    {
                        next.Add((pStart + cursor, m.Index - cursor));
                    }

                    next.Add((pStart + m.Index, m.Length));
                    cursor = m.Index + m.Length;
                }

                if (cursor < pLength)
                {
                    next.Add((pStart + cursor, pLength - cursor));
                }
            }

            pieces = next;
        }

        result.AddRange(pieces);
    }
}
