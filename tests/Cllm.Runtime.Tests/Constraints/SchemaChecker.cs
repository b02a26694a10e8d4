using System.Text.Json;

namespace Cllm.Tests.Constraints;

/// <summary>
/// An independent check of JSON against the schema subset constrained decoding supports, written from the JSON
/// Schema rules (not from the recogniser): type (one or a list), properties, required, additionalProperties,
/// items, minItems, maxItems, enum, const, anyOf, oneOf (exactly one), local $ref. Returns the first violation.
/// </summary>
static class SchemaChecker
{
    public static string? Check(string json, string schemaJson)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(json); }
        catch (JsonException e) { return $"not JSON: {e.Message}"; }
        using (document)
        using (var schema = JsonDocument.Parse(schemaJson))
            return Check(document.RootElement, schema.RootElement, schema.RootElement, "$");
    }

    public static string? Check(JsonElement value, JsonElement schema, JsonElement root, string at)
    {
        if (schema.ValueKind == JsonValueKind.True) return null;
        if (schema.ValueKind == JsonValueKind.False) return $"{at}: schema false";
        if (schema.TryGetProperty("$ref", out var reference))
        {
            var target = root;
            foreach (var part in reference.GetString()!.Split('/').Skip(1)) target = target.GetProperty(part);
            return Check(value, target, root, at);
        }
        if (schema.TryGetProperty("const", out var constant) && !JsonElement.DeepEquals(value, constant))
            return $"{at}: {value.GetRawText()} is not the const {constant.GetRawText()}";
        if (schema.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(v => JsonElement.DeepEquals(v, value)))
            return $"{at}: {value.GetRawText()} is not in the enum {values.GetRawText()}";
        if (schema.TryGetProperty("anyOf", out var anyOf) && anyOf.EnumerateArray().All(s => Check(value, s, root, at) is not null))
            return $"{at}: {value.GetRawText()} matches no anyOf option";
        if (schema.TryGetProperty("oneOf", out var oneOf) && oneOf.EnumerateArray().Count(s => Check(value, s, root, at) is null) != 1)
            return $"{at}: {value.GetRawText()} does not match exactly one oneOf option";
        if (schema.TryGetProperty("type", out var type))
        {
            var types = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (!types.Any(t => HasType(value, t))) return $"{at}: {value.GetRawText()} is not of type {type.GetRawText()}";
        }
        if (value.ValueKind == JsonValueKind.Object)
        {
            var names = value.EnumerateObject().Select(p => p.Name).ToList();
            if (schema.TryGetProperty("required", out var required))
                foreach (var name in required.EnumerateArray().Select(r => r.GetString()!))
                    if (!names.Contains(name)) return $"{at}: required property '{name}' is missing";
            var declared = schema.TryGetProperty("properties", out var properties) ? properties : default;
            foreach (var property in value.EnumerateObject())
            {
                if (declared.ValueKind == JsonValueKind.Object && declared.TryGetProperty(property.Name, out var propertySchema))
                {
                    if (Check(property.Value, propertySchema, root, $"{at}.{property.Name}") is { } error) return error;
                }
                else if (schema.TryGetProperty("additionalProperties", out var additional))
                {
                    if (additional.ValueKind == JsonValueKind.False) return $"{at}: property '{property.Name}' is not allowed";
                    if (additional.ValueKind == JsonValueKind.Object && Check(property.Value, additional, root, $"{at}.{property.Name}") is { } error)
                        return error;
                }
            }
        }
        if (value.ValueKind == JsonValueKind.Array)
        {
            var items = value.EnumerateArray().ToList();
            if (schema.TryGetProperty("minItems", out var min) && items.Count < min.GetInt32()) return $"{at}: fewer than {min} items";
            if (schema.TryGetProperty("maxItems", out var max) && items.Count > max.GetInt32()) return $"{at}: more than {max} items";
            if (schema.TryGetProperty("items", out var itemSchema))
                for (var i = 0; i < items.Count; i++)
                    if (Check(items[i], itemSchema, root, $"{at}[{i}]") is { } error) return error;
        }
        return null;
    }

    static bool HasType(JsonElement value, string type) => type switch
    {
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && decimal.TryParse(value.GetRawText(), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => throw new ArgumentException(type),
    };
}
