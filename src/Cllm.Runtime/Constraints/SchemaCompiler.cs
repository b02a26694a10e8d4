using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Cllm.Constraints;

/// <summary>
/// Compiles a JSON schema to grammar nodes. The subset: type (one or a list, so "nullable" is a type list;
/// OpenAPI's nullable: true too), properties (in the schema's order), required, additionalProperties,
/// items, minItems, maxItems, enum, const, anyOf, oneOf (as anyOf), allOf of one schema, local $ref
/// (#, #/$defs/..., #/definitions/...; may recurse), boolean schemas. Keywords that only narrow values
/// (format, pattern, minLength, maxLength, minimum, maximum, multipleOf, uniqueItems) are not enforced; titles,
/// descriptions and defaults are ignored. Objects hold only their declared properties (extra ones are never
/// generated, which every schema allows); an object schema without properties takes any keys.
/// </summary>
sealed class SchemaCompiler
{
    /// <summary>Depth of nesting an unconstrained JSON value may reach.</summary>
    public const int MaxAnyDepth = 16;

    internal static readonly JsonSerializerOptions TextOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    readonly JsonElement _root;
    readonly JsonWhitespace _whitespace;
    readonly Dictionary<string, Node> _references = [];
    Node? _any;

    SchemaCompiler(JsonElement root, JsonWhitespace whitespace) => (_root, _whitespace) = (root, whitespace);

    public static Node Compile(JsonElement schema, JsonWhitespace whitespace) => new SchemaCompiler(schema, whitespace).Compile(schema, "#");

    /// <summary>Any JSON value, nested at most <see cref="MaxAnyDepth"/> deep.</summary>
    public static Node AnyValue(JsonWhitespace whitespace, int depth = 0)
    {
        Node[] scalars = [StringNode.Instance, NumberNode.Number, Literal("true", "false", "null")];
        if (depth >= MaxAnyDepth) return new ChoiceNode(scalars);
        var inner = AnyValue(whitespace, depth + 1);
        return new ChoiceNode([new ObjectNode(null, inner, whitespace), new ArrayNode(inner, 0, int.MaxValue, whitespace), .. scalars]);
    }

    public static LiteralNode Literal(params string[] texts) => new(texts.Select(Encoding.UTF8.GetBytes));

    Node Any => _any ??= AnyValue(_whitespace);

    Node Compile(JsonElement schema, string path)
    {
        switch (schema.ValueKind)
        {
            case JsonValueKind.True:
                return Any;
            case JsonValueKind.False:
                throw new ArgumentException($"JSON schema at {path} is false: no value matches it, so nothing can be generated.");
            case JsonValueKind.Object:
                break;
            default:
                throw new ArgumentException($"JSON schema at {path} is {schema.ValueKind}; a schema is an object or true/false.");
        }

        if (schema.TryGetProperty("$ref", out var reference)) return Reference(reference, path);
        if (schema.TryGetProperty("const", out var constant)) return Literal(Text(constant));
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                throw new ArgumentException($"JSON schema at {path}: 'enum' must be a non-empty array, not {values.GetRawText()}.");
            return Literal([.. values.EnumerateArray().Select(Text)]);
        }
        foreach (var keyword in new[] { "anyOf", "oneOf" })
            if (schema.TryGetProperty(keyword, out var options))
                return new ChoiceNode([.. Items(options, $"{path}/{keyword}").Select(x => Compile(x.Schema, x.Path))]);
        if (schema.TryGetProperty("allOf", out var all))
        {
            var parts = Items(all, $"{path}/allOf");
            if (parts.Count != 1)
                throw new NotSupportedException(
                    $"JSON schema at {path}: 'allOf' with {parts.Count} schemas is not supported by constrained decoding; merge them into one schema.");
            return Compile(parts[0].Schema, parts[0].Path);
        }

        var types = Types(schema, path);
        if (types.Count == 0) return Any;
        var nodes = types.Select(type => Typed(schema, type, path)).ToList();
        return nodes.Count == 1 ? nodes[0] : new ChoiceNode(nodes);
    }

    List<string> Types(JsonElement schema, string path)
    {
        var types = new List<string>();
        if (schema.TryGetProperty("type", out var type))
        {
            if (type.ValueKind == JsonValueKind.String) types.Add(type.GetString()!);
            else if (type.ValueKind == JsonValueKind.Array)
                types.AddRange(type.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String
                    ? t.GetString()!
                    : throw new ArgumentException($"JSON schema at {path}: 'type' lists {t.GetRawText()}, which is not a type name.")));
            else throw new ArgumentException($"JSON schema at {path}: 'type' must be a string or an array of strings, not {type.GetRawText()}.");
        }
        else if (schema.TryGetProperty("properties", out _) || schema.TryGetProperty("additionalProperties", out _)) types.Add("object");
        else if (schema.TryGetProperty("items", out _)) types.Add("array");
        if (types.Count > 0 && schema.TryGetProperty("nullable", out var nullable) && nullable.ValueKind == JsonValueKind.True && !types.Contains("null"))
            types.Add("null");
        return [.. types.Distinct()];
    }

    Node Typed(JsonElement schema, string type, string path) => type switch
    {
        "object" => Object(schema, path),
        "array" => Array(schema, path),
        "string" => StringNode.Instance,
        "number" => NumberNode.Number,
        "integer" => NumberNode.Integer,
        "boolean" => Literal("true", "false"),
        "null" => Literal("null"),
        _ => throw new ArgumentException(
            $"JSON schema at {path}: type '{type}' is not a JSON Schema type; use object, array, string, number, integer, boolean or null."),
    };

    Node Object(JsonElement schema, string path)
    {
        var required = new List<string>();
        if (schema.TryGetProperty("required", out var names))
        {
            if (names.ValueKind != JsonValueKind.Array || names.EnumerateArray().Any(n => n.ValueKind != JsonValueKind.String))
                throw new ArgumentException($"JSON schema at {path}: 'required' must be an array of property names, not {names.GetRawText()}.");
            required.AddRange(names.EnumerateArray().Select(n => n.GetString()!));
        }

        if (!schema.TryGetProperty("properties", out var properties))
        {
            // Free keys; their values follow additionalProperties when it is a schema.
            var extra = schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.Object
                ? Compile(additional, $"{path}/additionalProperties")
                : Any;
            if (required.Count == 0) return new ObjectNode(null, extra, _whitespace);
            return new ObjectNode([.. required.Distinct().Select(n => Rule(n, extra, true))], null, _whitespace);
        }
        if (properties.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"JSON schema at {path}: 'properties' must be an object, not {properties.GetRawText()}.");

        var rules = properties.EnumerateObject()
            .Select(p => Rule(p.Name, Compile(p.Value, $"{path}/properties/{p.Name}"), required.Contains(p.Name)))
            .ToList();
        // A required name without a declared schema may hold any value.
        foreach (var name in required.Distinct())
            if (!rules.Exists(r => r.Name == name)) rules.Add(Rule(name, Any, true));
        return new ObjectNode(rules, null, _whitespace);
    }

    static PropertyRule Rule(string name, Node value, bool required) =>
        new(name, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(name, TextOptions)), value, required);

    Node Array(JsonElement schema, string path)
    {
        var items = Any;
        if (schema.TryGetProperty("items", out var itemSchema))
        {
            if (itemSchema.ValueKind == JsonValueKind.Array)
                throw new NotSupportedException($"JSON schema at {path}: tuple 'items' (an array of schemas) is not supported; use one schema.");
            items = Compile(itemSchema, $"{path}/items");
        }
        var min = Count(schema, "minItems", path) ?? 0;
        var max = Count(schema, "maxItems", path) ?? int.MaxValue;
        if (max < min) throw new ArgumentException($"JSON schema at {path}: maxItems {max} is below minItems {min}.");
        return new ArrayNode(items, min, max, _whitespace);
    }

    static int? Count(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var count) || count < 0)
            throw new ArgumentException($"JSON schema at {path}: '{keyword}' must be a non-negative integer, not {value.GetRawText()}.");
        return count;
    }

    Node Reference(JsonElement reference, string path)
    {
        var target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : "";
        if (target != "#" && !target.StartsWith("#/", StringComparison.Ordinal))
            throw new NotSupportedException(
                $"JSON schema at {path}: $ref '{reference.GetRawText()}' is not supported; only references inside the schema (#/...) are.");
        if (_references.TryGetValue(target, out var node)) return node;
        node = new ReferenceNode(() => Compile(Resolve(target, path), target));
        _references[target] = node;
        return node;
    }

    JsonElement Resolve(string pointer, string path)
    {
        var at = _root;
        foreach (var raw in pointer.Split('/').Skip(1))
        {
            var part = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            var found = at.ValueKind == JsonValueKind.Object && at.TryGetProperty(part, out at);
            if (!found) throw new ArgumentException($"JSON schema at {path}: $ref '{pointer}' points to nothing in the schema.");
        }
        return at;
    }

    static List<(JsonElement Schema, string Path)> Items(JsonElement array, string path)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw new ArgumentException($"JSON schema at {path} must be a non-empty array of schemas, not {array.GetRawText()}.");
        return [.. array.EnumerateArray().Select((s, i) => (s, $"{path}/{i}"))];
    }

    /// <summary>The compact JSON text of a value, as an enum or const writes it.</summary>
    static string Text(JsonElement value) => JsonSerializer.Serialize(value, TextOptions);
}
