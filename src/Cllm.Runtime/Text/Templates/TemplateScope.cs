namespace Cllm.Text.Templates;

/// <summary>
/// Variables of one level: the render's globals, a loop iteration or a macro call. <c>set</c> writes to the
/// innermost level, so (as in Jinja) a value set inside a loop is gone after it; namespaces carry values out.
/// </summary>
internal sealed class TemplateScope(TemplateScope? parent)
{
    readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);

    public object? Lookup(string name)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope._values.TryGetValue(name, out var value)) return value;
        }

        return Undefined.Instance;
    }

    public void Set(string name, object? value) => _values[name] = value;

    public TemplateScope? Parent { get; } = parent;
}
