using System.Text;

namespace Cllm.Text.Templates;

/// <remarks>This part: attribute access and the methods of strings and dicts (lists and dicts are read-only, as in
/// transformers' immutable sandbox).</remarks>
internal static partial class TemplateBuiltins
{
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
}
