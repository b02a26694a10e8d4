using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Cllm.Text.Templates;

/// <summary>
/// A Hugging Face chat template (the Jinja text in tokenizer_config.json's <c>chat_template</c>), parsed once
/// and rendered with the variables transformers' <c>apply_chat_template</c> passes: <c>messages</c>,
/// <c>tools</c>, <c>documents</c>, <c>add_generation_prompt</c>, the special tokens and any extra keyword
/// arguments. Whitespace follows transformers (trim_blocks and lstrip_blocks on). Globals:
/// <c>raise_exception(msg)</c> (throws a <see cref="TemplateException"/> naming the template),
/// <c>strftime_now(format)</c>, <c>range</c>, <c>namespace</c>, <c>dict</c>.
/// </summary>
public sealed class ChatTemplate
{
    readonly IReadOnlyList<Node> _nodes;

    ChatTemplate(string source, string name, IReadOnlyList<Node> nodes)
    {
        Source = source;
        Name = name;
        _nodes = nodes;
    }

    /// <summary>The name errors use (e.g. the tokenizer_config.json path and template name).</summary>
    public string Name { get; }

    public string Source { get; }

    /// <summary>The clock <c>strftime_now</c> reads (local time by default; tests fix it).</summary>
    public Func<DateTime> Now { get; init; } = () => DateTime.Now;

    /// <exception cref="TemplateException">The template is malformed (the message has the line and column).</exception>
    public static ChatTemplate Parse(string source, string name = "chat_template")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new ChatTemplate(source, name, TemplateParser.Parse(source, name));
    }

    /// <summary>A copy of this template that reads another clock.</summary>
    public ChatTemplate WithClock(Func<DateTime> now) => new(Source, Name, _nodes) { Now = now };

    /// <summary>Renders with the members of <paramref name="variables"/> as the template's variables.</summary>
    public string Render(JsonObject variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in variables) values[key] = TemplateValues.FromJson(value);
        return RenderValues(values);
    }

    /// <summary>
    /// Renders with .NET values as variables: strings, numbers, booleans, null, lists, dictionaries and
    /// System.Text.Json nodes or elements.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return RenderValues(variables.ToDictionary(p => p.Key, p => TemplateValues.FromObject(p.Value), StringComparer.Ordinal));
    }

    string RenderValues(Dictionary<string, object?> values)
    {
        var evaluator = new TemplateEvaluator(Source, Name);
        var globals = new TemplateScope(null);
        globals.Set("raise_exception", new TemplateFunction("raise_exception", (args, _) =>
            throw new TemplateException(Name, 0, 0, "the template raised an exception: " + (args.Count > 0 ? TemplateValues.ToText(args[0]) : ""))));
        globals.Set("strftime_now", new TemplateFunction("strftime_now", (args, _) => Strftime(Now(), args.Count > 0 ? TemplateValues.ToText(args[0]) : "")));
        globals.Set("range", new TemplateFunction("range", (args, _) => Range(args)));
        globals.Set("namespace", new TemplateFunction("namespace", (args, kwargs) =>
        {
            var ns = new TemplateNamespace();
            if (args.Count > 0 && args[0] is OrderedDictionary<string, object?> initial)
            {
                foreach (var (k, v) in initial) ns.Values[k] = v;
            }

            foreach (var (k, v) in kwargs) ns.Values[k] = v;
            return ns;
        }));
        globals.Set("dict", new TemplateFunction("dict", (_, kwargs) =>
        {
            var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (k, v) in kwargs) d[k] = v;
            return d;
        }));
        var scope = new TemplateScope(globals);
        foreach (var (key, value) in values) scope.Set(key, value);
        return evaluator.Render(_nodes, scope);
    }

    static List<object?> Range(IReadOnlyList<object?> args)
    {
        long[] n = args.Select(a => a is long l ? l : a is bool b ? (b ? 1 : 0)
            : throw new ArgumentException($"range() takes integers, got {TemplateValues.TypeName(a)}")).ToArray();
        (long start, long stop, long step) = n.Length switch
        {
            1 => (0, n[0], 1),
            2 => (n[0], n[1], 1),
            3 => (n[0], n[1], n[2]),
            _ => throw new ArgumentException("range() takes 1 to 3 arguments"),
        };
        if (step == 0) throw new ArgumentException("range() step must not be zero");
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) result.Add(i);
        return result;
    }

    /// <summary>Python's strftime for the directives templates use (%d %m %Y %y %b %B %a %A %H %I %M %S %p %j %%).</summary>
    internal static string Strftime(DateTime time, string format)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            char d = format[++i];
            sb.Append(d switch
            {
                'd' => time.ToString("dd", c),
                'm' => time.ToString("MM", c),
                'Y' => time.ToString("yyyy", c),
                'y' => time.ToString("yy", c),
                'b' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'H' => time.ToString("HH", c),
                'I' => time.ToString("hh", c),
                'M' => time.ToString("mm", c),
                'S' => time.ToString("ss", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => time.DayOfYear.ToString("000", c),
                'e' => time.Day.ToString(c).PadLeft(2),
                '-' when i + 1 < format.Length => format[++i] switch
                {
                    'd' => time.Day.ToString(c),
                    'm' => time.Month.ToString(c),
                    'H' => time.Hour.ToString(c),
                    var other => "%-" + other,
                },
                '%' => "%",
                _ => "%" + d,
            });
        }

        return sb.ToString();
    }
}
