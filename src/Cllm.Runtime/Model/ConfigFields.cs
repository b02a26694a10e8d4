using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cllm.Model;

/// <summary>
/// Typed, range-checked reads of a JSON config file's fields (config.json, generation_config.json,
/// tokenizer_config.json). Every error names the file, the field, the value found and what it must be.
/// </summary>
internal sealed class ConfigFields(JsonObject json, string file)
{
    public string File => file;

    public static InvalidDataException Error(string file, string field, string value, string expected) =>
        new($"{file}: field '{field}' is {value}; it must be {expected}. Fix or remove '{field}' in {Path.GetFileName(file)}.");

    public static string Show(JsonNode? node)
    {
        if (node is null) return "null";
        var text = node.ToJsonString();
        var kind = node.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Array => "an array",
            JsonValueKind.Object => "an object",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => null,
        };
        if (text.Length > 60) text = text[..60] + "...";
        return kind is null ? text : $"{text} ({kind})";
    }

    public bool Has(string key) => json[key] is not null;

    /// <summary>An integer field: a JSON number without a fraction, in [min, max].</summary>
    public int? Int(string key, long min = int.MinValue, long max = int.MaxValue) =>
        json[key] is { } node ? ToInt(node, key, min, max) : null;

    public int ToInt(JsonNode node, string field, long min, long max)
    {
        string expected = max >= int.MaxValue ? $"a whole number >= {min}" : $"a whole number from {min} to {max}";
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number)
            throw Error(file, field, Show(node), expected);
        double d = value.GetValue<double>();
        if (d != Math.Floor(d) || d < min || d > max) throw Error(file, field, Show(node), expected);
        return (int)d;
    }

    public double? Double(string key, double min, double max, bool minExclusive = true)
    {
        if (json[key] is not { } node) return null;
        string expected = minExclusive ? $"a number > {Format(min)}" : $"a number >= {Format(min)}";
        if (max < double.MaxValue) expected += $" and <= {Format(max)}";
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number) throw Error(file, key, Show(node), expected);
        double d = value.GetValue<double>();
        if (!double.IsFinite(d) || d < min || (minExclusive && d == min) || d > max) throw Error(file, key, Show(node), expected);
        return d;
    }

    public bool? Bool(string key)
    {
        if (json[key] is not { } node) return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(file, key, Show(node), "true or false"),
        };
    }

    public string? String(string key)
    {
        if (json[key] is not { } node) return null;
        return node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : throw Error(file, key, Show(node), "a string");
    }

    /// <summary>One id or a list of ids (eos_token_id), each in [0, max).</summary>
    public IReadOnlyList<int> Ids(string key, long limit)
    {
        var node = json[key];
        string expected = $"a token id from 0 to {limit - 1} or a list of them";
        return node switch
        {
            null => [],
            JsonArray a => a.Select((x, i) => x is null ? throw Error(file, $"{key}[{i}]", "null", expected) : ToInt(x, $"{key}[{i}]", 0, limit - 1)).ToArray(),
            _ => [ToInt(node, key, 0, limit - 1)],
        };
    }

    static string Format(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
