using System.Globalization;
using System.Text;

namespace Cllm.Text.Templates;

/// <remarks>This part: the filters (<c>x | trim</c>, <c>x | tojson</c>, ...).</remarks>
internal static partial class TemplateBuiltins
{
    public static object? Filter(TemplateEvaluator ev, string name, object? value, IReadOnlyList<object?> args,
        IReadOnlyDictionary<string, object?> kwargs, int offset)
    {
        object? A(int i, string key, object? fallback = null) => Arg(args, kwargs, i, key, fallback);
        try
        {
            switch (name)
            {
                case "trim":
                    return A(0, "chars") is string chars ? TemplateValues.ToText(value).Trim(chars.ToCharArray()) : TemplateValues.ToText(value).Trim();
                case "tojson":
                    int? indent = A(0, "indent") is long n ? (int)n : null;
                    (string, string)? separators = A(2, "separators") is List<object?> { Count: 2 } sep
                        ? (TemplateValues.ToText(sep[0]), TemplateValues.ToText(sep[1])) : null;
                    return TemplateValues.ToJson(value, indent, TemplateValues.IsTruthy(A(3, "sort_keys")), separators);
                case "length" or "count":
                    return value switch
                    {
                        string s => (long)s.EnumerateRunes().Count(), // Python counts code points
                        List<object?> l => (long)l.Count,
                        OrderedDictionary<string, object?> d => (long)d.Count,
                        TemplateNamespace ns => (long)ns.Values.Count,
                        Undefined => 0L,
                        _ => throw ev.Error(offset, $"'{name}' needs a string, list or dict, got a {TemplateValues.TypeName(value)}."),
                    };
                case "items":
                    return value switch
                    {
                        OrderedDictionary<string, object?> d => d.Select(p => (object?)new TemplateTuple([p.Key, p.Value])).ToList(),
                        Undefined or null => new List<object?>(),
                        _ => throw ev.Error(offset, $"'items' needs a dict, got a {TemplateValues.TypeName(value)}."),
                    };
                case "first":
                    return ev.Iterate(value, offset) is { Count: > 0 } f ? f[0] : Undefined.Instance;
                case "last":
                    return ev.Iterate(value, offset) is { Count: > 0 } last ? last[^1] : Undefined.Instance;
                case "upper": return TemplateValues.ToText(value).ToUpperInvariant();
                case "lower": return TemplateValues.ToText(value).ToLowerInvariant();
                case "title": return Title(TemplateValues.ToText(value));
                case "capitalize": return Capitalize(TemplateValues.ToText(value));
                case "replace":
                    return Replace(TemplateValues.ToText(value), [A(0, "old"), A(1, "new")], A(2, "count"));
                case "join":
                    var parts = ev.Iterate(value, offset);
                    if (A(1, "attribute") is string joinAttribute) parts = parts.Select(p => GetAttribute(p, joinAttribute)).ToList();
                    return string.Join(TemplateValues.ToText(A(0, "d", "")), parts.Select(TemplateValues.ToText));
                case "default" or "d":
                    bool boolean = TemplateValues.IsTruthy(A(1, "boolean", false));
                    return value is Undefined || (boolean && !TemplateValues.IsTruthy(value)) ? A(0, "default_value", "") : value;
                case "list":
                    return value is string str ? ev.Iterate(str, offset) : ev.Iterate(value, offset).ToList();
                case "string" or "safe" or "forceescape": return value is string ? value : TemplateValues.ToText(value);
                case "e" or "escape": return Escape(TemplateValues.ToText(value));
                case "int":
                    return value switch
                    {
                        long l => l,
                        double d => (long)Math.Truncate(d),
                        bool b => b ? 1L : 0L,
                        string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p,
                        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => (long)Math.Truncate(p),
                        _ => A(0, "default", 0L),
                    };
                case "float":
                    return value switch
                    {
                        long l => (double)l,
                        double d => d,
                        bool b => b ? 1.0 : 0.0,
                        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => p,
                        _ => A(0, "default", 0.0),
                    };
                case "abs":
                    return value switch
                    {
                        long l => (object)Math.Abs(l),
                        double d => Math.Abs(d),
                        _ => throw ev.Error(offset, $"'abs' needs a number, got a {TemplateValues.TypeName(value)}."),
                    };
                case "round":
                    int precision = A(0, "precision", 0L) is long pr ? (int)pr : 0;
                    string method = TemplateValues.ToText(A(1, "method", "common"));
                    double x = Convert.ToDouble(value is bool bv ? (bv ? 1 : 0) : value, CultureInfo.InvariantCulture);
                    double scale = Math.Pow(10, precision);
                    return method switch
                    {
                        "ceil" => Math.Ceiling(x * scale) / scale,
                        "floor" => Math.Floor(x * scale) / scale,
                        _ when value is long whole => (object)whole, // Python's round() keeps an int an int
                        _ => Math.Round(x, precision, MidpointRounding.ToEven), // and rounds half to even
                    };
                // jinja2's map/select/reject family yields nothing for a none or empty value (`if value:` guard).
                case "map" or "select" or "reject" or "selectattr" or "rejectattr" when value is null:
                    return new List<object?>();
                case "map":
                    var mapped = ev.Iterate(value, offset);
                    if (A(-1, "attribute") is string mapAttribute)
                    {
                        var fallback = kwargs.TryGetValue("default", out var def) ? def : Undefined.Instance;
                        return mapped.Select(m => GetAttribute(m, mapAttribute) is Undefined ? fallback : GetAttribute(m, mapAttribute)).ToList();
                    }

                    if (args.Count > 0 && args[0] is string mapFilter)
                        return mapped.Select(m => Filter(ev, mapFilter, m, args.Skip(1).ToList(), new Dictionary<string, object?>(), offset)).ToList();
                    throw ev.Error(offset, "'map' needs a filter name or attribute=.");
                case "selectattr" or "rejectattr":
                    string attribute = TemplateValues.ToText(A(0, "attr"));
                    bool keep = name == "selectattr";
                    return ev.Iterate(value, offset).Where(item =>
                    {
                        var v = GetAttribute(item, attribute);
                        bool pass = args.Count > 1 && args[1] is string test ? Test(ev, test, v, args.Skip(2).ToList(), offset) : TemplateValues.IsTruthy(v);
                        return pass == keep;
                    }).ToList();
                case "select" or "reject":
                    bool keepSelected = name == "select";
                    return ev.Iterate(value, offset).Where(item =>
                    {
                        bool pass = args.Count > 0 && args[0] is string test ? Test(ev, test, item, args.Skip(1).ToList(), offset) : TemplateValues.IsTruthy(item);
                        return pass == keepSelected;
                    }).ToList();
                case "unique":
                    var unique = new List<object?>();
                    foreach (var item in ev.Iterate(value, offset))
                    {
                        if (!unique.Any(u => AreEqual(u, item))) unique.Add(item);
                    }

                    return unique;
                case "sort":
                    bool reverse = TemplateValues.IsTruthy(A(0, "reverse", false));
                    bool caseSensitive = TemplateValues.IsTruthy(A(1, "case_sensitive", false));
                    var sortAttribute = A(2, "attribute") as string;
                    var sorted = ev.Iterate(value, offset).ToList();
                    object? Key(object? item)
                    {
                        var k = sortAttribute is null ? item : GetAttribute(item, sortAttribute);
                        return !caseSensitive && k is string ks ? ks.ToLowerInvariant() : k;
                    }

                    var ordered = sorted.Select((item, i) => (item, i)).OrderBy(p => Key(p.item), Comparer<object?>.Create((a, b) => Compare(ev, a, b, offset)))
                        .ThenBy(p => p.i).Select(p => p.item).ToList();
                    if (reverse) ordered.Reverse();
                    return ordered;
                case "dictsort":
                    if (value is not OrderedDictionary<string, object?> toSort)
                        throw ev.Error(offset, $"'dictsort' needs a dict, got a {TemplateValues.TypeName(value)}.");
                    bool byValue = TemplateValues.ToText(A(1, "by", "key")) == "value";
                    bool sortCase = TemplateValues.IsTruthy(A(0, "case_sensitive", false));
                    object? SortKey(KeyValuePair<string, object?> p)
                    {
                        var k = byValue ? p.Value : p.Key;
                        return !sortCase && k is string ks ? ks.ToLowerInvariant() : k;
                    }

                    var pairs = toSort.OrderBy(SortKey, Comparer<object?>.Create((a, b) => Compare(ev, a, b, offset)))
                        .Select(p => (object?)new TemplateTuple([p.Key, p.Value])).ToList();
                    if (TemplateValues.IsTruthy(A(2, "reverse", false))) pairs.Reverse();
                    return pairs;
                case "reverse":
                    if (value is string rs) return string.Concat(rs.EnumerateRunes().Reverse().Select(r => r.ToString()));
                    var reversed = ev.Iterate(value, offset).ToList();
                    reversed.Reverse();
                    return reversed;
                case "indent":
                    return Indent(TemplateValues.ToText(value), A(0, "width", 4L), TemplateValues.IsTruthy(A(1, "first", false)),
                        TemplateValues.IsTruthy(A(2, "blank", false)));
                case "wordcount":
                    return (long)Split(TemplateValues.ToText(value), null, -1L).Count;
                case "batch":
                    long size = A(0, "linecount") is long ls && ls > 0 ? ls : throw ev.Error(offset, "'batch' needs a positive size.");
                    var batches = ev.Iterate(value, offset).Chunk((int)size).Select(c => (object?)c.ToList()).ToList();
                    if (A(1, "fill_with") is { } fill and not Undefined && batches.Count > 0 && batches[^1] is List<object?> lastBatch)
                    {
                        while (lastBatch.Count < size) lastBatch.Add(fill);
                    }

                    return batches;
                case "sum":
                    object? total = A(1, "start", 0L);
                    foreach (var item in ev.Iterate(value, offset))
                        total = Arithmetic(ev, "+", total, A(0, "attribute") is string sa ? GetAttribute(item, sa) : item, offset);
                    return total;
                case "min" or "max":
                    var candidates = ev.Iterate(value, offset);
                    if (candidates.Count == 0) return Undefined.Instance;
                    var best = candidates[0];
                    foreach (var c in candidates.Skip(1))
                    {
                        int cmp = Compare(ev, c, best, offset);
                        if (name == "min" ? cmp < 0 : cmp > 0) best = c;
                    }

                    return best;
                case "format":
                    return PercentFormat(TemplateValues.ToText(value), args);
                case "truncate":
                    string full = TemplateValues.ToText(value);
                    int length = A(0, "length", 255L) is long tl ? (int)tl : 255;
                    string end = TemplateValues.ToText(A(2, "end", "..."));
                    int leeway = A(4, "leeway", 5L) is long lw ? (int)lw : 5;
                    if (full.Length <= length + leeway) return full;
                    if (TemplateValues.IsTruthy(A(1, "killwords", false))) return full[..Math.Max(0, length - end.Length)] + end;
                    string cut = full[..Math.Max(0, length - end.Length)];
                    int space = cut.LastIndexOf(' ');
                    return (space > 0 ? cut[..space] : cut) + end;
                case "center":
                    string text = TemplateValues.ToText(value);
                    int width = A(0, "width", 80L) is long w ? (int)w : 80;
                    int left = (width - text.Length) / 2;
                    return width <= text.Length ? text : new string(' ', left) + text + new string(' ', width - text.Length - left);
                default:
                    throw ev.Error(offset, $"unknown filter '{name}'.");
            }
        }
        catch (TemplateException)
        {
            throw;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or InvalidCastException or OverflowException)
        {
            throw ev.Error(offset, $"filter '{name}' failed on a {TemplateValues.TypeName(value)}: {e.Message}", e);
        }
    }

    // Python's printf-style formatting for the conversions templates use: %s %r %d %i %f %%.
    static string PercentFormat(string format, IReadOnlyList<object?> args)
    {
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            char c = format[++i];
            if (c == '%')
            {
                sb.Append('%');
                continue;
            }

            if (next >= args.Count) throw new ArgumentException("not enough arguments for format string");
            var arg = args[next++];
            sb.Append(c switch
            {
                's' => TemplateValues.ToText(arg),
                'r' => TemplateValues.ToRepr(arg),
                'd' or 'i' => Convert.ToInt64(arg is double d ? Math.Truncate(d) : arg, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
                'f' => Convert.ToDouble(arg, CultureInfo.InvariantCulture).ToString("F6", CultureInfo.InvariantCulture),
                _ => throw new ArgumentException($"unsupported format character '{c}'"),
            });
        }

        return sb.ToString();
    }

    // markupsafe's escaping, which jinja2's escape filter uses.
    static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);

    static string Indent(string text, object? width, bool first, bool blank)
    {
        string pad = width is string sw ? sw : new string(' ', width is long w ? (int)w : 4);
        var lines = text.Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            bool indentThis = (i > 0 || first) && (blank || lines[i].Trim().Length > 0);
            if (indentThis) sb.Append(pad);
            sb.Append(lines[i]);
        }

        return sb.ToString();
    }
}
