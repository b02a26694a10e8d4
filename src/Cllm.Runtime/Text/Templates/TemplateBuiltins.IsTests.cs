namespace Cllm.Text.Templates;

/// <remarks>This part: the tests (<c>x is defined</c>, <c>x is string</c>, ...).</remarks>
internal static partial class TemplateBuiltins
{
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
}
