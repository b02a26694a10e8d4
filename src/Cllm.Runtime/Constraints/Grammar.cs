using System.Text;
using System.Text.Json;

namespace Cllm.Constraints;

/// <summary>
/// What constrained text must look like: JSON values, JSON schemas, literal text, in sequence or as
/// alternatives. Immutable; compile it for a tokenizer with <see cref="TokenConstraint.Create"/>.
/// </summary>
public sealed class Grammar
{
    readonly Func<Node> _build;

    Grammar(string description, Func<Node> build) => (Description, _build) = (description, build);

    /// <summary>A short account of the grammar, for messages.</summary>
    public string Description { get; }

    internal Node Build() => _build();

    /// <summary>Any JSON value (<paramref name="objectOnly"/>: a JSON object, as <c>ChatResponseFormat.Json</c> asks).</summary>
    public static Grammar Json(bool objectOnly = false, JsonWhitespace whitespace = JsonWhitespace.Spaced) =>
        new(objectOnly ? "a JSON object" : "a JSON value", () => objectOnly
            ? new ObjectNode(null, SchemaCompiler.AnyValue(whitespace, 1), whitespace)
            : SchemaCompiler.AnyValue(whitespace));

    /// <summary>JSON that matches <paramref name="schema"/> (the subset is listed on <see cref="JsonSchema(string, JsonWhitespace)"/>).</summary>
    public static Grammar JsonSchema(JsonElement schema, JsonWhitespace whitespace = JsonWhitespace.Spaced)
    {
        var copy = schema.Clone();
        var node = SchemaCompiler.Compile(copy, whitespace); // compile now, so a bad schema fails here
        return new("JSON matching a schema", () => node);
    }

    /// <summary>
    /// JSON that matches the schema <paramref name="schemaJson"/>. Supported: type (one or a list, so nullable
    /// values are a type list; OpenAPI's nullable: true too), properties (written in the schema's order; optional
    /// ones may be left out), required, additionalProperties, items, minItems, maxItems, enum, const, anyOf and
    /// oneOf, allOf of one schema, local $ref (may recurse), true/false. Not enforced: format, pattern, minLength,
    /// maxLength, minimum, maximum, multipleOf, uniqueItems. Only declared properties are written; an object
    /// schema without properties takes any keys. Numbers have at most 15 digits before and after the point.
    /// </summary>
    /// <exception cref="ArgumentException">The text is not JSON or not a usable schema (the message names the place).</exception>
    /// <exception cref="NotSupportedException">The schema uses a structure outside the subset.</exception>
    public static Grammar JsonSchema(string schemaJson, JsonWhitespace whitespace = JsonWhitespace.Spaced)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(schemaJson);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"The JSON schema is not valid JSON ({e.Message}): {Shorten(schemaJson)}", nameof(schemaJson), e);
        }
        using (document) return JsonSchema(document.RootElement, whitespace);
    }

    /// <summary>Exactly <paramref name="text"/>.</summary>
    public static Grammar Literal(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return new($"\"{text}\"", () => SchemaCompiler.Literal(text));
    }

    /// <summary>The parts one after another.</summary>
    public static Grammar Sequence(params Grammar[] parts)
    {
        if (parts is null || parts.Length == 0) throw new ArgumentException("A sequence needs at least one part.", nameof(parts));
        return new(string.Join(" then ", parts.Select(p => p.Description)), () => new SequenceNode(parts.Select(p => p.Build())));
    }

    /// <summary>Any one of the options.</summary>
    public static Grammar Choice(params Grammar[] options)
    {
        if (options is null || options.Length == 0) throw new ArgumentException("A choice needs at least one option.", nameof(options));
        return options.Length == 1
            ? options[0]
            : new("one of " + string.Join(" or ", options.Select(p => p.Description)), () => new ChoiceNode([.. options.Select(p => p.Build())]));
    }

    /// <summary>
    /// One call of one of <paramref name="tools"/>: <paramref name="before"/>, then
    /// <c>{"name": "NAME", "arguments": ARGS}</c> where ARGS matches that tool's parameter schema (null: a JSON
    /// object), then <paramref name="after"/>. The default tags are the default model's and ChatML's (whose
    /// calls put a newline inside the tags: pass "&lt;tool_call&gt;\n" and "\n&lt;/tool_call&gt;").
    /// <paramref name="argumentsKey"/> names the arguments member: Llama 3.1's calls write "parameters".
    /// </summary>
    public static Grammar ToolCall(IEnumerable<ToolSchema> tools, string before = "<tool_call>", string after = "</tool_call>",
        JsonWhitespace whitespace = JsonWhitespace.Spaced, string argumentsKey = "arguments")
    {
        ArgumentException.ThrowIfNullOrEmpty(argumentsKey);
        ArgumentNullException.ThrowIfNull(tools);
        var list = tools.ToList();
        if (list.Count == 0) throw new ArgumentException("A tool call needs at least one tool to call.", nameof(tools));
        var duplicate = list.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Tool '{duplicate.Key}' is offered twice.", nameof(tools));
        var colon = whitespace == JsonWhitespace.Compact ? ":" : ": ";
        var comma = whitespace == JsonWhitespace.Compact ? "," : ", ";
        return Choice([.. list.Select(tool =>
        {
            var head = before + "{\"name\"" + colon + JsonSerializer.Serialize(tool.Name, SchemaCompiler.TextOptions) + comma +
                JsonSerializer.Serialize(argumentsKey, SchemaCompiler.TextOptions) + colon;
            Grammar arguments;
            try
            {
                arguments = tool.ParametersSchema is null ? Json(objectOnly: true, whitespace) : JsonSchema(tool.ParametersSchema, whitespace);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"Tool '{tool.Name}': {e.Message}", nameof(tools), e);
            }
            return Sequence(Literal(head), arguments, Literal("}" + after));
        })]);
    }

    static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "...";

    public override string ToString() => Description;
}

/// <summary>A tool a constrained call may name: its name and its parameters' JSON schema (null: any JSON object).</summary>
public sealed record ToolSchema(string Name, string? ParametersSchema)
{
    public string Name { get; } = !string.IsNullOrEmpty(Name) ? Name : throw new ArgumentException("A tool needs a name.", nameof(Name));
}
