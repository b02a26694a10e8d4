using System.Globalization;
using System.Text;

namespace Cllm.Text.Templates;

/// <summary>
/// Splits a template into text and the tokens inside <c>{{ }}</c> and <c>{% %}</c> (comments dropped), applying
/// the whitespace rules transformers renders chat templates with: a single trailing newline of the template is
/// dropped, <c>trim_blocks</c> (the newline right after a block or comment tag goes), <c>lstrip_blocks</c>
/// (spaces and tabs from the start of a line up to a block or comment tag go) and the <c>-</c> markers, which
/// strip all whitespace on their side.
/// </summary>
internal sealed class TemplateLexer
{
    readonly string _source;
    readonly string _name;
    readonly List<TemplateToken> _tokens = [];
    int _pos;

    TemplateLexer(string source, string name)
    {
        _source = source.EndsWith('\n') ? source[..^1] : source;
        _name = name;
    }

    public static List<TemplateToken> Tokenize(string source, string name)
    {
        var lexer = new TemplateLexer(source, name);
        lexer.Run();
        return lexer._tokens;
    }

    void Run()
    {
        bool stripNextLeading = false, trimNextNewline = false;
        while (_pos < _source.Length)
        {
            int tag = NextTag(_pos);
            int textEnd = tag < 0 ? _source.Length : tag;
            int textStart = _pos;
            string text = _source[textStart..textEnd];
            char kind = tag < 0 ? ' ' : _source[tag + 1];
            bool minus = tag >= 0 && tag + 2 < _source.Length && _source[tag + 2] == '-';
            bool plus = tag >= 0 && tag + 2 < _source.Length && _source[tag + 2] == '+';
            if (minus) text = text.TrimEnd();
            else if (tag >= 0 && kind != '{' && !plus) text = LstripBlock(text, textStart);
            if (stripNextLeading) text = text.TrimStart();
            else if (trimNextNewline && text.StartsWith('\n')) text = text[1..];
            else if (trimNextNewline && text.StartsWith("\r\n", StringComparison.Ordinal)) text = text[2..];
            stripNextLeading = trimNextNewline = false;
            AddText(text, textStart);
            if (tag < 0) break;

            _pos = tag + 2 + (minus || plus ? 1 : 0);

            if (kind == '#')
            {
                int close = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
                if (close < 0) throw Error(tag, "the comment '{#' is never closed with '#}'.");
                stripNextLeading = close > _pos && _source[close - 1] == '-';
                trimNextNewline = true;
                _pos = close + 2;
                continue;
            }

            bool statement = kind == '%';
            if (statement && IsRawStart())
            {
                (stripNextLeading, trimNextNewline) = ReadRaw(tag);
                continue;
            }

            _tokens.Add(new(statement ? TokenKind.StatementOpen : TokenKind.ExpressionOpen, statement ? "{%" : "{{", tag));
            bool closedWithMinus = LexInside(statement, tag);
            stripNextLeading = closedWithMinus;
            trimNextNewline = statement;
        }

        _tokens.Add(new(TokenKind.End, "", _source.Length));
    }

    void AddText(string text, int offset)
    {
        if (text.Length > 0) _tokens.Add(new(TokenKind.Text, text, offset));
    }

    int NextTag(int from)
    {
        int at = from;
        while ((at = _source.IndexOf('{', at)) >= 0 && at + 1 < _source.Length)
        {
            char c = _source[at + 1];
            if (c is '{' or '%' or '#') return at;
            at++;
        }

        return -1;
    }

    // lstrip_blocks: whitespace between the start of a line and a block tag goes.
    string LstripBlock(string text, int textStart)
    {
        int lastNewline = text.LastIndexOf('\n');
        string tail = text[(lastNewline + 1)..];
        if (tail.Any(c => c is not (' ' or '\t'))) return text;
        bool atLineStart = lastNewline >= 0 || textStart == 0 || _source[textStart - 1] == '\n';
        return atLineStart ? text[..(lastNewline + 1)] : text;
    }

    bool IsRawStart()
    {
        int p = _pos;
        while (p < _source.Length && char.IsWhiteSpace(_source[p])) p++;
        if (string.CompareOrdinal(_source, p, "raw", 0, 3) != 0) return false;
        p += 3;
        while (p < _source.Length && char.IsWhiteSpace(_source[p])) p++;
        return p + 1 < _source.Length && (_source[p] == '%' || (_source[p] == '-' && _source[p + 1] == '%'));
    }

    (bool StripNext, bool TrimNext) ReadRaw(int tag)
    {
        int close = _source.IndexOf("%}", _pos, StringComparison.Ordinal);
        bool stripAfterOpen = _source[close - 1] == '-';
        int bodyStart = close + 2;
        int search = bodyStart;
        while (true)
        {
            int end = _source.IndexOf("{%", search, StringComparison.Ordinal);
            if (end < 0) throw Error(tag, "'{% raw %}' is never closed with '{% endraw %}'.");
            int p = end + 2;
            bool minus = p < _source.Length && _source[p] == '-';
            if (minus || (p < _source.Length && _source[p] == '+')) p++;
            while (p < _source.Length && char.IsWhiteSpace(_source[p])) p++;
            if (string.CompareOrdinal(_source, p, "endraw", 0, 6) == 0)
            {
                string body = _source[bodyStart..end];
                if (stripAfterOpen) body = body.TrimStart();
                else if (body.StartsWith('\n')) body = body[1..];
                body = minus ? body.TrimEnd() : LstripBlock(body, bodyStart);
                AddText(body, bodyStart);
                int endClose = _source.IndexOf("%}", p, StringComparison.Ordinal);
                if (endClose < 0) throw Error(end, "'{% endraw' is not closed with '%}'.");
                _pos = endClose + 2;
                return (_source[endClose - 1] == '-', true);
            }

            search = end + 2;
        }
    }

    // Tokens up to the closing }} or %}; returns whether it was closed with a '-'.
    bool LexInside(bool statement, int openedAt)
    {
        int braces = 0;
        while (true)
        {
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) _pos++;
            if (_pos >= _source.Length)
                throw Error(openedAt, $"'{(statement ? "{%" : "{{")}' is never closed with '{(statement ? "%}" : "}}")}'.");
            char c = _source[_pos];
            string closer = statement ? "%}" : "}}";
            if (braces == 0 && Matches(closer))
            {
                _tokens.Add(new(statement ? TokenKind.StatementClose : TokenKind.ExpressionClose, closer, _pos));
                _pos += 2;
                return false;
            }

            if (braces == 0 && c == '-' && Matches("-" + closer))
            {
                _tokens.Add(new(statement ? TokenKind.StatementClose : TokenKind.ExpressionClose, closer, _pos));
                _pos += 3;
                return true;
            }

            if (c is '"' or '\'')
            {
                int start = _pos;
                _tokens.Add(new(TokenKind.String, ReadString(c), start));
            }
            else if (char.IsDigit(c))
            {
                ReadNumber();
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int start = _pos;
                while (_pos < _source.Length && (char.IsLetterOrDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
                _tokens.Add(new(TokenKind.Name, _source[start.._pos], start));
            }
            else
            {
                string? op = s_operators.FirstOrDefault(Matches);
                if (op is null) throw Error(_pos, $"unexpected character '{c}'.");
                if (op == "{") braces++;
                else if (op == "}") braces--;
                _tokens.Add(new(TokenKind.Operator, op, _pos));
                _pos += op.Length;
            }
        }
    }

    static readonly string[] s_operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    bool Matches(string s) => string.CompareOrdinal(_source, _pos, s, 0, s.Length) == 0;

    string ReadString(char quote)
    {
        int start = _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _source.Length) throw Error(start, "a string literal is never closed.");
            char c = _source[_pos++];
            if (c == quote) return sb.ToString();
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }

            if (_pos >= _source.Length) throw Error(start, "a string literal is never closed.");
            char e = _source[_pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case '0': sb.Append('\0'); break;
                case 'x' or 'u' or 'U':
                    int length = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (_pos + length > _source.Length ||
                        !int.TryParse(_source.AsSpan(_pos, length), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                        throw Error(_pos - 2, $"'\\{e}' must be followed by {length} hex digits.");
                    sb.Append(char.ConvertFromUtf32(code));
                    _pos += length;
                    break;
                case '\n': break;
                case '\\' or '\'' or '"': sb.Append(e); break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes as written
            }
        }
    }

    void ReadNumber()
    {
        int start = _pos;
        while (_pos < _source.Length && (char.IsDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        bool isFloat = false;
        if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsDigit(_source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _source.Length && char.IsDigit(_source[_pos])) _pos++;
        }

        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-') _pos++;
            if (_pos < _source.Length && char.IsDigit(_source[_pos]))
            {
                isFloat = true;
                while (_pos < _source.Length && char.IsDigit(_source[_pos])) _pos++;
            }
            else
            {
                _pos = save;
            }
        }

        _tokens.Add(new(isFloat ? TokenKind.Float : TokenKind.Integer, _source[start.._pos].Replace("_", ""), start));
    }

    TemplateException Error(int offset, string detail) => TemplateErrors.At(_name, _source, offset, detail);
}
