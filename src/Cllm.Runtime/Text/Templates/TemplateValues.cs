using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cllm.Text.Templates;

/// <summary>A name that is not defined: falsy, renders as nothing, and any attribute or item of it is undefined too.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    Undefined()
    {
    }
}

/// <summary>What <c>namespace(...)</c> makes: attributes a loop body can assign and the code after it can read.</summary>
internal sealed class TemplateNamespace
{
    public OrderedDictionary<string, object?> Values { get; } = new(StringComparer.Ordinal);
}

/// <summary>A Python tuple (what <c>dict.items()</c> yields and <c>(a, b)</c> makes): a list that prints with parentheses.</summary>
internal sealed class TemplateTuple(IEnumerable<object?> items) : List<object?>(items);

/// <summary>Something a template can call: a global, a bound method, a macro.</summary>
internal sealed record TemplateFunction(string Name, Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?> Invoke);

/// <summary>
/// The value model: <c>null</c> (none), <see cref="Undefined"/>, string, long, double, bool,
/// <c>List&lt;object?&gt;</c>, <c>OrderedDictionary&lt;string, object?&gt;</c>, <see cref="TemplateNamespace"/>
/// and <see cref="TemplateFunction"/>. Conversions to and from JSON and to text live here.
/// </summary>
internal static class TemplateValues
{
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => ToDictionary(o),
        JsonArray a => a.Select(FromJson).ToList(),
        JsonValue v => FromJsonValue(v),
        _ => null,
    };

    static OrderedDictionary<string, object?> ToDictionary(JsonObject o)
    {
        var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in o) d[key] = FromJson(value);
        return d;
    }

    static object? FromJsonValue(JsonValue v)
    {
        if (v.TryGetValue<JsonElement>(out var e))
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String: return e.GetString();
                case JsonValueKind.True: return true;
                case JsonValueKind.False: return false;
                case JsonValueKind.Null: return null;
                case JsonValueKind.Number:
                    string raw = e.GetRawText();
                    if (!raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E') && e.TryGetInt64(out long l)) return l;
                    return e.GetDouble();
            }
        }

        if (v.TryGetValue<string>(out var s)) return s;
        if (v.TryGetValue<bool>(out var b)) return b;
        if (v.TryGetValue<long>(out var i)) return i;
        if (v.TryGetValue<int>(out var i32)) return (long)i32;
        if (v.TryGetValue<double>(out var d)) return d;
        return v.ToJsonString();
    }

    /// <summary>Converts .NET values a caller passes in (strings, numbers, dictionaries, lists, JSON) to the model.</summary>
    public static object? FromObject(object? value) => value switch
    {
        null => null,
        Undefined or string or long or double or bool or TemplateNamespace or TemplateFunction => value,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        JsonNode n => FromJson(n),
        JsonElement e => FromJson(JsonNode.Parse(e.GetRawText())),
        OrderedDictionary<string, object?> d => d,
        IEnumerable<KeyValuePair<string, object?>> pairs => ToOrdered(pairs),
        List<object?> list => list,
        System.Collections.IEnumerable items => items.Cast<object?>().Select(FromObject).ToList(),
        _ => value.ToString(),
    };

    static OrderedDictionary<string, object?> ToOrdered(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in pairs) d[k] = FromObject(v);
        return d;
    }

    public static bool IsTruthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        string s => s.Length > 0,
        long l => l != 0,
        double d => d != 0,
        List<object?> l => l.Count > 0,
        OrderedDictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double;

    /// <summary>
    /// How <c>{{ value }}</c>, <c>~</c> and the string filters write a value: Python's str(), as transformers'
    /// jinja2 does (none is "None", booleans "True"/"False", lists and dicts their repr); undefined is "".
    /// </summary>
    public static string ToText(object? value) => value switch
    {
        Undefined => "",
        string s => s,
        _ => ToRepr(value),
    };

    /// <summary>Python's repr: strings quoted, containers with their items' repr.</summary>
    public static string ToRepr(object? value)
    {
        var sb = new StringBuilder();
        WriteRepr(sb, value);
        return sb.ToString();
    }

    static void WriteRepr(StringBuilder sb, object? value)
    {
        switch (value)
        {
            case null: sb.Append("None"); break;
            case Undefined: break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FormatFloat(d)); break;
            case string s: WriteStringRepr(sb, s); break;
            case List<object?> list:
                bool tuple = list is TemplateTuple;
                sb.Append(tuple ? '(' : '[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    WriteRepr(sb, list[i]);
                }

                sb.Append(tuple ? (list.Count == 1 ? ",)" : ")") : "]");
                break;
            case OrderedDictionary<string, object?> or TemplateNamespace:
                var dict = value as OrderedDictionary<string, object?> ?? ((TemplateNamespace)value).Values;
                if (value is TemplateNamespace) sb.Append("<Namespace ");
                sb.Append('{');
                int n = 0;
                foreach (var (k, v) in dict)
                {
                    if (n++ > 0) sb.Append(", ");
                    WriteStringRepr(sb, k);
                    sb.Append(": ");
                    WriteRepr(sb, v);
                }

                sb.Append('}');
                if (value is TemplateNamespace) sb.Append('>');
                break;
            case TemplateFunction f: sb.Append("<function ").Append(f.Name).Append('>'); break;
            default: sb.Append(value); break;
        }
    }

    static void WriteStringRepr(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }

        sb.Append(quote);
    }

    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == Math.Floor(d) && Math.Abs(d) < 1e16) return d.ToString("0.0", CultureInfo.InvariantCulture);
        return d.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal); // 1e-05, as Python
    }

    /// <summary>
    /// <c>tojson</c> as transformers defines it: Python's json.dumps with ensure_ascii=False, keys in their
    /// order, ", " and ": " between items (",\n" with an indent).
    /// </summary>
    public static string ToJson(object? value, int? indent = null, bool sortKeys = false, (string Item, string Key)? separators = null)
    {
        var sb = new StringBuilder();
        var (item, key) = separators ?? (indent is null ? (", ", ": ") : (",", ": "));
        WriteJson(sb, value, indent, 0, sortKeys, item, key);
        return sb.ToString();
    }

    static void WriteJson(StringBuilder sb, object? value, int? indent, int depth, bool sortKeys, string item, string key)
    {
        switch (value)
        {
            case null or Undefined:
                sb.Append("null");
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(double.IsFinite(d) ? FormatFloat(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
                break;
            case string s:
                WriteJsonString(sb, s);
                break;
            case List<object?> list:
                if (list.Count == 0)
                {
                    sb.Append("[]");
                    break;
                }

                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(item);
                    NewLine(sb, indent, depth + 1);
                    WriteJson(sb, list[i], indent, depth + 1, sortKeys, item, key);
                }

                NewLine(sb, indent, depth);
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> or TemplateNamespace:
                var dict = value as OrderedDictionary<string, object?> ?? ((TemplateNamespace)value).Values;
                if (dict.Count == 0)
                {
                    sb.Append("{}");
                    break;
                }

                IEnumerable<KeyValuePair<string, object?>> entries = sortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal) : dict;
                sb.Append('{');
                int n = 0;
                foreach (var (k, v) in entries)
                {
                    if (n++ > 0) sb.Append(item);
                    NewLine(sb, indent, depth + 1);
                    WriteJsonString(sb, k);
                    sb.Append(key);
                    WriteJson(sb, v, indent, depth + 1, sortKeys, item, key);
                }

                NewLine(sb, indent, depth);
                sb.Append('}');
                break;
            default:
                WriteJsonString(sb, ToText(value));
                break;
        }
    }

    static void NewLine(StringBuilder sb, int? indent, int depth)
    {
        if (indent is not { } width) return;
        sb.Append('\n').Append(' ', width * depth);
    }

    static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }

        sb.Append('"');
    }

    public static string TypeName(object? value) => value switch
    {
        null => "none",
        Undefined => "undefined",
        string => "string",
        long => "integer",
        double => "float",
        bool => "boolean",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        TemplateNamespace => "namespace",
        TemplateFunction => "function",
        _ => value.GetType().Name,
    };
}
