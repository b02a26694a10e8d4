using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Cllm.Text;

/// <summary>
/// A pre-tokenizer regex that matches by Unicode code point, as the reference tokenizers' regex engines
/// do. .NET's <see cref="Regex"/> works on UTF-16 units: <c>\p{L}</c>, <c>\p{N}</c>, <c>\p{S}</c> never
/// match a character above U+FFFF, and a class such as <c>[^\r\n\p{L}]?</c> can take half of a surrogate
/// pair, so ids stop representing the text.
/// </summary>
/// <remarks>
/// Text containing such characters is matched in a stand-in form: each astral character becomes one
/// BMP character of the same Unicode general category (from .NET's own <see cref="Rune"/> data), the
/// regex runs on that, and match positions are mapped back. Every pattern construct that depends on a
/// category (<c>\p{..}</c>, <c>\s</c>, <c>\w</c>, negated classes) then sees the right category, and no
/// match can end inside a pair. Text without surrogates is matched directly.
/// </remarks>
internal sealed class CodePointRegex
{
    private static readonly char[] StandIns = BuildStandIns();

    public CodePointRegex(Regex regex) => Regex = regex;

    public Regex Regex { get; }

    /// <summary>The non-empty matches in <paramref name="text"/> as (index, length) in UTF-16 units of the text.</summary>
    public List<(int Index, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (!HasSurrogate(text))
        {
            foreach (var m in Regex.EnumerateMatches(text))
            {
                if (m.Length > 0)
                {
                    result.Add((m.Index, m.Length));
                }
            }

            return result;
        }

        // offsets[i] = position in text of stand-in char i; offsets[^1] = text.Length.
        var standIn = new StringBuilder(text.Length);
        var offsets = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length;)
        {
            offsets.Add(i);
            if (Rune.TryGetRuneAt(text, i, out var rune))
            {
                standIn.Append(rune.IsBmp ? (char)rune.Value : StandIns[(int)Rune.GetUnicodeCategory(rune)]);
                i += rune.Utf16SequenceLength;
            }
            else
            {
                standIn.Append(text[i]); // a lone surrogate stays what it is
                i++;
            }
        }

        offsets.Add(text.Length);
        foreach (var m in Regex.EnumerateMatches(standIn.ToString()))
        {
            if (m.Length > 0)
            {
                int start = offsets[m.Index];
                result.Add((start, offsets[m.Index + m.Length] - start));
            }
        }

        return result;
    }

    private static bool HasSurrogate(string text)
    {
        foreach (char c in text)
        {
            if (char.IsSurrogate(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// For each general category, a BMP character of that category taken from the top of the BMP
    /// downwards (away from ASCII and the CJK ranges patterns name explicitly), never whitespace.
    /// </summary>
    private static char[] BuildStandIns()
    {
        var table = new char[Enum.GetValues<UnicodeCategory>().Length];
        var found = new bool[table.Length];
        for (int c = 0xFFFD; c >= 0x80; c--)
        {
            if (c is >= 0xD800 and <= 0xDFFF || char.IsWhiteSpace((char)c))
            {
                continue;
            }

            int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[category])
            {
                found[category] = true;
                table[category] = (char)c;
            }
        }

        // Categories without any BMP member (none today) fall back to an unassigned character.
        for (int i = 0; i < table.Length; i++)
        {
            if (!found[i])
            {
                table[i] = '\u0378';
            }
        }

        return table;
    }
}
