using System.Globalization;
using System.Text;

namespace Cllm.Text.Templates;

/// <summary>Operators, filters, tests and the methods of strings, lists and dicts that chat templates use.</summary>
internal static class TemplateBuiltins
{
    // ---- Operators ------------------------------------------------------------------------------------

    public static object? Operate(TemplateEvaluator ev, string op, object? a, object? b, int offset)
    {
        switch (op)
        {
            case "==": return AreEqual(a, b);
            case "!=": return !AreEqual(a, b);
            case "<" or "<=" or ">" or ">=":
                int c = Compare(ev, a, b, offset);
                return op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
            case "in": return Contains(ev, b, a, offset);
            case "not in": return !Contains(ev, b, a, offset);
            case "~": return TemplateValues.ToText(a) + TemplateValues.ToText(b);
            case "%" when a is string format: return PercentFormat(format, b is TemplateTuple t ? t : [b]);
            case "+":
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                return Arithmetic(ev, op, a, b, offset);
            case "*":
                if (a is string rs && AsInteger(b) is { } times) return string.Concat(Enumerable.Repeat(rs, (int)Math.Max(0, times)));
                if (a is List<object?> rl && AsInteger(b) is { } n) return Enumerable.Repeat(rl, (int)Math.Max(0, n)).SelectMany(x => x).ToList();
                return Arithmetic(ev, op, a, b, offset);
            default:
                return Arithmetic(ev, op, a, b, offset);
        }
    }

    static long? AsInteger(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => null };

    static object? Arithmetic(TemplateEvaluator ev, string op, object? a, object? b, int offset)
    {
        if (a is bool ba) a = ba ? 1L : 0L;
        if (b is bool bb) b = bb ? 1L : 0L;
        if (!TemplateValues.IsNumber(a) || !TemplateValues.IsNumber(b))
            throw ev.Error(offset, $"cannot apply '{op}' to a {TemplateValues.TypeName(a)} and a {TemplateValues.TypeName(b)}.");
        if (a is long x && b is long y)
        {
            switch (op)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "/":
                    if (y == 0) throw ev.Error(offset, "division by zero.");
                    return (double)x / y;
                case "//":
                    if (y == 0) throw ev.Error(offset, "division by zero.");
                    return (long)Math.Floor((double)x / y);
                case "%":
                    if (y == 0) throw ev.Error(offset, "modulo by zero.");
                    return ((x % y) + y) % y; // Python: the sign of the divisor
                case "**": return y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
            }
        }

        double p = Convert.ToDouble(a, CultureInfo.InvariantCulture), q = Convert.ToDouble(b, CultureInfo.InvariantCulture);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw ev.Error(offset, "division by zero.") : p / q,
            "//" => q == 0 ? throw ev.Error(offset, "division by zero.") : Math.Floor(p / q),
            "%" => q == 0 ? throw ev.Error(offset, "modulo by zero.") : p - q * Math.Floor(p / q),
            "**" => Math.Pow(p, q),
            _ => throw ev.Error(offset, $"unknown operator '{op}'."),
        };
    }

    public static bool AreEqual(object? a, object? b)
    {
        if (a is bool ba && b is bool bb) return ba == bb;
        if (TemplateValues.IsNumber(a) && TemplateValues.IsNumber(b))
            return Convert.ToDouble(a, CultureInfo.InvariantCulture) == Convert.ToDouble(b, CultureInfo.InvariantCulture);
        return (a, b) switch
        {
            (null, null) or (Undefined, Undefined) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && AreEqual(p.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    static int Compare(TemplateEvaluator ev, object? a, object? b, int offset)
    {
        if (a is bool ba) a = ba ? 1L : 0L;
        if (b is bool bb) b = bb ? 1L : 0L;
        if (TemplateValues.IsNumber(a) && TemplateValues.IsNumber(b))
            return Convert.ToDouble(a, CultureInfo.InvariantCulture).CompareTo(Convert.ToDouble(b, CultureInfo.InvariantCulture));
        if (a is string x && b is string y) return string.CompareOrdinal(x, y);
        if (a is List<object?> lx && b is List<object?> ly)
        {
            for (int i = 0; i < Math.Min(lx.Count, ly.Count); i++)
            {
                int c = Compare(ev, lx[i], ly[i], offset);
                if (c != 0) return c;
            }

            return lx.Count.CompareTo(ly.Count);
        }

        throw ev.Error(offset, $"cannot compare a {TemplateValues.TypeName(a)} with a {TemplateValues.TypeName(b)}.");
    }

    static bool Contains(TemplateEvaluator ev, object? container, object? item, int offset) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw ev.Error(offset, $"'in <string>' needs a string on the left, got a {TemplateValues.TypeName(item)}."),
        List<object?> list => list.Any(x => AreEqual(x, item)),
        OrderedDictionary<string, object?> d => item is string key && d.ContainsKey(key),
        TemplateNamespace ns => item is string key && ns.Values.ContainsKey(key),
        Undefined or null => false,
        _ => throw ev.Error(offset, $"cannot look for a value in a {TemplateValues.TypeName(container)}."),
    };

    public static IEnumerable<int> SliceIndices(int count, long? start, long? stop, long step, int offset, TemplateEvaluator ev)
    {
        if (step == 0) throw ev.Error(offset, "slice step cannot be zero.");
        long Norm(long v, long low, long high) => Math.Clamp(v < 0 ? v + count : v, low, high);
        if (step > 0)
        {
            long s = start is { } a ? Norm(a, 0, count) : 0, e = stop is { } b ? Norm(b, 0, count) : count;
            for (long i = s; i < e; i += step) yield return (int)i;
        }
        else
        {
            long s = start is { } a ? Norm(a, -1, count - 1) : count - 1, e = stop is { } b ? Norm(b, -1, count - 1) : -1;
            for (long i = s; i > e; i += step) yield return (int)i;
        }
    }

    // ---- Attributes and methods -----------------------------------------------------------------------

    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case OrderedDictionary<string, object?> d:
                if (d.TryGetValue(name, out var v)) return v;
                return (object?)DictMethod(d, name) ?? Undefined.Instance;
            case TemplateNamespace ns:
                return ns.Values.TryGetValue(name, out var nv) ? nv : Undefined.Instance;
            case string s:
                return (object?)StringMethod(s, name) ?? Undefined.Instance;
            case List<object?> list:
                return (object?)ListMethod(list, name) ?? Undefined.Instance;
            default:
                return Undefined.Instance;
        }
    }

    static TemplateFunction Method(string name, Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?> body) => new(name, body);

    static object? Arg(IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs, int index, string name, object? fallback = null) =>
        index >= 0 && index < args.Count ? args[index] : kwargs.TryGetValue(name, out var v) ? v : fallback;

    static TemplateFunction? DictMethod(OrderedDictionary<string, object?> d, string name) => name switch
    {
        "get" => Method("dict.get", (a, k) => a.Count > 0 && a[0] is not null && d.TryGetValue(TemplateValues.ToText(a[0]), out var v) ? v
            : Arg(a, k, 1, "default")),
        "items" => Method("dict.items", (_, _) => d.Select(p => (object?)new TemplateTuple([p.Key, p.Value])).ToList()),
        "keys" => Method("dict.keys", (_, _) => d.Keys.Cast<object?>().ToList()),
        "values" => Method("dict.values", (_, _) => d.Values.ToList()),
        _ => null,
    };

    static TemplateFunction? ListMethod(List<object?> list, string name) => name switch
    {
        "index" => Method("list.index", (a, _) =>
        {
            int i = list.FindIndex(x => AreEqual(x, a.Count > 0 ? a[0] : null));
            return i >= 0 ? i : throw new ArgumentException("value is not in the list");
        }),
        "count" => Method("list.count", (a, _) => (long)list.Count(x => AreEqual(x, a.Count > 0 ? a[0] : null))),
        _ => null,
    };

    static TemplateFunction? StringMethod(string s, string name) => name switch
    {
        "strip" => Method("str.strip", (a, _) => Strip(s, a, true, true)),
        "lstrip" => Method("str.lstrip", (a, _) => Strip(s, a, true, false)),
        "rstrip" => Method("str.rstrip", (a, _) => Strip(s, a, false, true)),
        "upper" => Method("str.upper", (_, _) => s.ToUpperInvariant()),
        "lower" => Method("str.lower", (_, _) => s.ToLowerInvariant()),
        "title" => Method("str.title", (_, _) => Title(s)),
        "capitalize" => Method("str.capitalize", (_, _) => Capitalize(s)),
        "startswith" => Method("str.startswith", (a, _) => Affix(a, p => s.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Method("str.endswith", (a, _) => Affix(a, p => s.EndsWith(p, StringComparison.Ordinal))),
        "split" => Method("str.split", (a, k) => Split(s, Arg(a, k, 0, "sep"), Arg(a, k, 1, "maxsplit", -1L))),
        "rsplit" => Method("str.rsplit", (a, k) => RSplit(s, Arg(a, k, 0, "sep"), Arg(a, k, 1, "maxsplit", -1L))),
        "replace" => Method("str.replace", (a, k) => Replace(s, a, Arg(a, k, 2, "count", -1L))),
        "find" => Method("str.find", (a, _) => (long)s.IndexOf(TemplateValues.ToText(a.Count > 0 ? a[0] : ""), StringComparison.Ordinal)),
        "count" => Method("str.count", (a, _) => (long)CountOf(s, TemplateValues.ToText(a.Count > 0 ? a[0] : ""))),
        "join" => Method("str.join", (a, _) => string.Join(s, (a.Count > 0 ? a[0] as List<object?> : null)?.Select(TemplateValues.ToText) ?? [])),
        "splitlines" => Method("str.splitlines", (_, _) =>
        {
            var lines = s.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Split('\n').Cast<object?>().ToList();
            if (lines.Count > 0 && (string?)lines[^1] == "") lines.RemoveAt(lines.Count - 1);
            return lines;
        }),
        "removeprefix" => Method("str.removeprefix", (a, _) => a.Count > 0 && a[0] is string p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s),
        "removesuffix" => Method("str.removesuffix", (a, _) => a.Count > 0 && a[0] is string p && p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s),
        "rfind" => Method("str.rfind", (a, _) => (long)s.LastIndexOf(TemplateValues.ToText(a.Count > 0 ? a[0] : ""), StringComparison.Ordinal)),
        "zfill" => Method("str.zfill", (a, _) => a.Count > 0 && a[0] is long w ? s.PadLeft((int)w, '0') : s),
        "isdigit" => Method("str.isdigit", (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => Method("str.isalpha", (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => Method("str.isspace", (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "islower" => Method("str.islower", (_, _) => s.Any(char.IsLetter) && s.Where(char.IsLetter).All(char.IsLower)),
        "isupper" => Method("str.isupper", (_, _) => s.Any(char.IsLetter) && s.Where(char.IsLetter).All(char.IsUpper)),
        _ => null,
    };

    static bool Affix(IReadOnlyList<object?> args, Func<string, bool> test) => args.Count > 0 && args[0] switch
    {
        string p => test(p),
        List<object?> options => options.OfType<string>().Any(test),
        _ => false,
    };

    static string Strip(string s, IReadOnlyList<object?> args, bool start, bool end)
    {
        char[]? chars = args.Count > 0 && args[0] is string c ? c.ToCharArray() : null;
        if (chars is null) return start && end ? s.Trim() : start ? s.TrimStart() : s.TrimEnd();
        return start && end ? s.Trim(chars) : start ? s.TrimStart(chars) : s.TrimEnd(chars);
    }

    static List<object?> Split(string s, object? sep, object? maxSplit)
    {
        long max = maxSplit is long m ? m : -1;
        if (sep is string separator)
        {
            if (separator.Length == 0) throw new ArgumentException("empty separator");
            var parts = max < 0 ? s.Split(separator) : s.Split(separator, (int)max + 1);
            return parts.Cast<object?>().ToList();
        }

        // No separator: runs of whitespace split, and leading/trailing whitespace gives no empty parts.
        var result = new List<object?>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) break;
            if (max >= 0 && result.Count == max)
            {
                result.Add(s[i..].TrimEnd());
                break;
            }

            int start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
            result.Add(s[start..i]);
        }

        return result;
    }

    static List<object?> RSplit(string s, object? sep, object? maxSplit)
    {
        long max = maxSplit is long m ? m : -1;
        if (max < 0 || sep is not string separator) return Split(s, sep, maxSplit);
        var parts = new List<object?>();
        string rest = s;
        while (parts.Count < max)
        {
            int at = rest.LastIndexOf(separator, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Insert(0, rest[(at + separator.Length)..]);
            rest = rest[..at];
        }

        parts.Insert(0, rest);
        return parts;
    }

    static string Replace(string s, IReadOnlyList<object?> args, object? count)
    {
        string from = TemplateValues.ToText(args.Count > 0 ? args[0] : ""), to = TemplateValues.ToText(args.Count > 1 ? args[1] : "");
        long n = count is long c ? c : -1;
        if (n < 0) return from.Length == 0 ? s : s.Replace(from, to, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int at = 0;
        while (n-- > 0)
        {
            int next = s.IndexOf(from, at, StringComparison.Ordinal);
            if (next < 0) break;
            sb.Append(s, at, next - at).Append(to);
            at = next + from.Length;
        }

        return sb.Append(s, at, s.Length - at).ToString();
    }

    static int CountOf(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        int n = 0, at = 0;
        while ((at = s.IndexOf(sub, at, StringComparison.Ordinal)) >= 0)
        {
            n++;
            at += sub.Length;
        }

        return n;
    }

    static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }

        return sb.ToString();
    }

    static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    // ---- Tests ----------------------------------------------------------------------------------------

    public static bool Test(TemplateEvaluator ev, string name, object? value, IReadOnlyList<object?> args, int offset)
    {
        object? First() => args.Count > 0 ? args[0] : Undefined.Instance;
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "number" => value is long or double,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is OrderedDictionary<string, object?> or TemplateNamespace,
            "sequence" => value is List<object?> or string or OrderedDictionary<string, object?>,
            "iterable" => value is List<object?> or string or OrderedDictionary<string, object?>,
            "callable" => value is TemplateFunction,
            "odd" => value is long l && ((l % 2) + 2) % 2 == 1,
            "even" => value is long e && e % 2 == 0,
            "divisibleby" => value is long d && First() is long by && by != 0 && d % by == 0,
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string u && u == u.ToUpperInvariant(),
            "eq" or "equalto" or "==" => AreEqual(value, First()),
            "ne" or "!=" => !AreEqual(value, First()),
            "lt" or "lessthan" => Compare(ev, value, First(), offset) < 0,
            "le" => Compare(ev, value, First(), offset) <= 0,
            "gt" or "greaterthan" => Compare(ev, value, First(), offset) > 0,
            "ge" => Compare(ev, value, First(), offset) >= 0,
            "in" => Contains(ev, First(), value, offset),
            "sameas" => value is null ? First() is null : value is bool b ? First() is bool c && b == c : ReferenceEquals(value, First()),
            "escaped" => false,
            _ => throw ev.Error(offset, $"unknown test '{name}'."),
        };
    }

    // ---- Filters --------------------------------------------------------------------------------------

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
