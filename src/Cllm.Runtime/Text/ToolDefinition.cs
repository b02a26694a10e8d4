using System.Text.Json.Nodes;

namespace Cllm.Text;

/// <summary>A function the model may call: what the chat format lists in the system turn.</summary>
public sealed record ToolDefinition(string Name, string Description, IReadOnlyList<ToolParameter> Parameters)
{
    /// <summary>
    /// The parameters as a standard JSON schema object (with descriptions), for hosts such as the agent
    /// demo that need one. The prompt uses the shorter <see cref="CompactSchema"/> instead.
    /// </summary>
    public string ParametersJsonSchema()
    {
        var properties = new JsonObject();
        foreach (var p in Parameters)
            properties[p.Name] = new JsonObject { ["type"] = p.Type, ["description"] = p.Description };
        var required = new JsonArray(Parameters.Where(p => p.Required).Select(p => (JsonNode?)JsonValue.Create(p.Name)).ToArray());
        return new JsonObject { ["type"] = "object", ["properties"] = properties, ["required"] = required }.ToJsonString();
    }

    /// <summary>
    /// Parameter name to type, e.g. <c>{"order_id":"integer"}</c>; optional ones get a trailing "?".
    /// It has the shape of the call's "arguments" object, so the model copies names straight across,
    /// and it costs a few tokens where a full schema would cost dozens (the context is 512 tokens).
    /// </summary>
    public string CompactSchema() =>
        new JsonObject(Parameters.Select(p => KeyValuePair.Create(p.Name, (JsonNode?)JsonValue.Create(p.Required ? p.Type : p.Type + "?"))))
            .ToJsonString();
}

/// <summary>One parameter; <see cref="Type"/> is "string", "integer" or "number".</summary>
public sealed record ToolParameter(string Name, string Type, string Description, bool Required = true);
