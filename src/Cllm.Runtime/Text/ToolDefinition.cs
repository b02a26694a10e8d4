using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cllm.Text;

/// <summary>
/// A function the model may call: what the chat format lists in the system turn. Made from a list of scalar
/// parameters (the demo tools), or from a whole JSON schema with <see cref="FromJsonSchema"/>, which keeps
/// arrays, objects, enums and nested values for the prompt.
/// </summary>
public sealed record ToolDefinition(string Name, string Description, IReadOnlyList<ToolParameter> Parameters)
{
    /// <summary>The parameters' JSON schema as given (compact JSON); null when made from <see cref="Parameters"/>.</summary>
    public string? Schema { get; init; }

    /// <summary>
    /// A tool from its parameters' JSON schema (an object schema with "properties" and "required"). The schema
    /// is kept whole: <see cref="ParametersJsonSchema"/> returns it and <see cref="CompactSchema"/> writes every
    /// parameter that is more than a plain scalar in full.
    /// </summary>
    /// <exception cref="ArgumentException">The schema is not an object, or "properties"/"required" have the wrong shape.</exception>
    public static ToolDefinition FromJsonSchema(string name, string? description, JsonElement parametersSchema)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (parametersSchema.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
            return new ToolDefinition(name, description ?? "", []);
        if (parametersSchema.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"Tool '{name}': the parameters schema must be a JSON object, got {parametersSchema.ValueKind}.",
                nameof(parametersSchema));
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (parametersSchema.TryGetProperty("required", out var r))
        {
            if (r.ValueKind != JsonValueKind.Array || r.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
                throw new ArgumentException($"Tool '{name}': \"required\" must be an array of parameter names, got {r.GetRawText()}.",
                    nameof(parametersSchema));
            required.UnionWith(r.EnumerateArray().Select(e => e.GetString()!));
        }

        var parameters = new List<ToolParameter>();
        if (parametersSchema.TryGetProperty("properties", out var properties))
        {
            if (properties.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"Tool '{name}': \"properties\" must be an object, got {properties.ValueKind}.",
                    nameof(parametersSchema));
            foreach (var p in properties.EnumerateObject())
                parameters.Add(new ToolParameter(p.Name, TypeName(p.Value), Text(p.Value, "description"), required.Contains(p.Name)));
        }

        return new ToolDefinition(name, description ?? "", parameters)
        {
            Schema = JsonNode.Parse(parametersSchema.GetRawText())!.ToJsonString(CllmChatFormat.Json),
        };
    }

    /// <summary>
    /// The parameters as a standard JSON schema object: the one given to <see cref="FromJsonSchema"/>, else one
    /// built from <see cref="Parameters"/> (with descriptions). Compact JSON.
    /// </summary>
    public string ParametersJsonSchema()
    {
        if (Schema is not null) return Schema;
        var properties = new JsonObject();
        foreach (var p in Parameters)
            properties[p.Name] = new JsonObject { ["type"] = p.Type, ["description"] = p.Description };
        var required = new JsonArray(Parameters.Where(p => p.Required).Select(p => (JsonNode?)JsonValue.Create(p.Name)).ToArray());
        return new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = required }.ToJsonString();
    }

    /// <summary>
    /// Parameter name to type, e.g. <c>{"order_id":"integer"}</c>; optional ones get a trailing "?". It has
    /// the shape of the call's "arguments" object, so the model copies names straight across, and it costs a
    /// few tokens where a full schema would cost dozens (the default model's context is 512 tokens). A parameter
    /// that is more than a plain scalar (an array, object, enum, format, bounds...) is written as its whole
    /// schema, e.g. <c>{"ids":{"type":"array","items":{"type":"integer"}}}</c>. Plain scalars lose only their
    /// description, as in the default model's training data.
    /// </summary>
    public string CompactSchema()
    {
        var properties = Schema is null ? null : JsonNode.Parse(Schema)?["properties"] as JsonObject;
        var compact = new JsonObject();
        foreach (var p in Parameters)
        {
            var full = properties?[p.Name];
            compact[p.Name] = full is JsonObject o && !IsPlainScalar(o)
                ? full.DeepClone()
                : JsonValue.Create(p.Required ? p.Type : p.Type + "?");
        }

        return compact.ToJsonString(CllmChatFormat.Json);
    }

    // {"type":"integer"} or {"type":["integer","null"]}, with at most a description or title beside it.
    static bool IsPlainScalar(JsonObject schema) =>
        schema.All(kv => kv.Key is "type" or "description" or "title")
        && schema["type"] switch
        {
            JsonValue v => v.GetValueKind() == JsonValueKind.String && IsScalarType(v.GetValue<string>()),
            JsonArray a => a.All(t => t is JsonValue tv && tv.GetValueKind() == JsonValueKind.String
                && (IsScalarType(tv.GetValue<string>()) || tv.GetValue<string>() == "null")),
            _ => false,
        };

    static bool IsScalarType(string type) => type is "string" or "integer" or "number" or "boolean";

    // "type" may be a list such as ["integer", "null"] for a nullable parameter; no "type" (anyOf, enum...) reads "any".
    static string TypeName(JsonElement property)
    {
        if (property.ValueKind != JsonValueKind.Object || !property.TryGetProperty("type", out var type)) return "any";
        if (type.ValueKind == JsonValueKind.String) return type.GetString()!;
        return type.ValueKind == JsonValueKind.Array
            ? type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString())
                .FirstOrDefault(t => t is not "null") ?? "any"
            : "any";
    }

    static string Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()! : "";
}

/// <summary>One parameter; <see cref="Type"/> is its JSON schema type ("string", "integer", "array"...).</summary>
public sealed record ToolParameter(string Name, string Type, string Description, bool Required = true);
