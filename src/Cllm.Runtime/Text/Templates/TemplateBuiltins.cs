using System.Globalization;

namespace Cllm.Text.Templates;

/// <summary>Operators, filters, tests and the methods of strings, lists and dicts that chat templates use.</summary>
/// <remarks>This part: the operators, equality, ordering, membership and slicing, with Python's semantics.</remarks>
internal static partial class TemplateBuiltins
{
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
}
