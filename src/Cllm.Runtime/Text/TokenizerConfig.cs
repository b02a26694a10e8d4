using System.Text.Json;

namespace Cllm.Text;

/// <summary>An entry of <c>added_tokens</c> / <c>added_tokens_decoder</c>: text that always maps to one id.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>
/// What a Hugging Face model folder says about special tokens, merged from <c>tokenizer_config.json</c>,
/// <c>special_tokens_map.json</c> and <c>generation_config.json</c>. Every field is optional because
/// real folders ship any subset of these files.
/// </summary>
internal sealed record TokenizerConfig(
    string? BosToken,
    string? EosToken,
    bool? AddBosToken,
    IReadOnlyList<AddedToken> AddedTokens,
    int? GenerationBosId,
    IReadOnlyList<int> GenerationEosIds)
{
    /// <summary>add_eos_token of tokenizer_config.json.</summary>
    public bool? AddEosToken { get; init; }

    /// <summary>
    /// legacy of tokenizer_config.json (SentencePiece models): true puts SentencePiece's "▁" in front of
    /// the text after every special token, false only at the start of the text.
    /// </summary>
    public bool? Legacy { get; init; }

    /// <summary>tokenizer_class of tokenizer_config.json, e.g. "LlamaTokenizerFast".</summary>
    public string? TokenizerClass { get; init; }

    public static TokenizerConfig Read(string directory)
    {
        string? bos = null, eos = null;
        bool? addBos = null, addEos = null, legacy = null;
        string? tokenizerClass = null;
        var added = new List<AddedToken>();

        using (var doc = TryParse(Path.Combine(directory, "tokenizer_config.json")))
        {
            if (doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                var root = doc.RootElement;
                string file = Path.Combine(directory, "tokenizer_config.json");
                bos = TokenText(file, root, "bos_token");
                eos = TokenText(file, root, "eos_token");
                if (root.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind != JsonValueKind.Null)
                {
                    addBos = ab.ValueKind is JsonValueKind.True or JsonValueKind.False
                        ? ab.GetBoolean()
                        : throw Field(file, "add_bos_token", ab, "true or false");
                }

                addEos = Flag(root, "add_eos_token");
                legacy = Flag(root, "legacy");
                tokenizerClass = root.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null;

                if (root.TryGetProperty("added_tokens_decoder", out var atd) && atd.ValueKind == JsonValueKind.Object)
                {
                    foreach (var p in atd.EnumerateObject())
                    {
                        string field = $"added_tokens_decoder.{p.Name}";
                        if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                        {
                            throw new InvalidDataException($"{file}: '{field}': the key must be a token id (a whole number >= 0), " +
                                                           $"not '{p.Name}'. Fix the key in tokenizer_config.json.");
                        }

                        if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                        {
                            throw Field(file, field, p.Value, "an object with the token's text in \"content\"");
                        }

                        bool special = p.Value.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                        added.Add(new AddedToken(id, c.GetString()!, special));
                    }
                }
            }
        }

        // Older folders keep bos/eos only in special_tokens_map.json.
        using (var doc = TryParse(Path.Combine(directory, "special_tokens_map.json")))
        {
            if (doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                string file = Path.Combine(directory, "special_tokens_map.json");
                string? mapBos = TokenText(file, doc.RootElement, "bos_token"), mapEos = TokenText(file, doc.RootElement, "eos_token");
                bos ??= mapBos;
                eos ??= mapEos;
            }
        }

        int? genBos = null;
        var genEos = new List<int>();
        using (var doc = TryParse(Path.Combine(directory, "generation_config.json")))
        {
            if (doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                var root = doc.RootElement;
                string file = Path.Combine(directory, "generation_config.json");
                if (root.TryGetProperty("bos_token_id", out var b) && b.ValueKind != JsonValueKind.Null)
                {
                    genBos = Id(file, "bos_token_id", b);
                }

                // Instruct models list several stop ids here (e.g. LLaMA-3: end_of_text and eot_id).
                if (root.TryGetProperty("eos_token_id", out var e))
                {
                    if (e.ValueKind == JsonValueKind.Array)
                    {
                        genEos.AddRange(e.EnumerateArray().Select((x, i) => Id(file, $"eos_token_id[{i}]", x)));
                    }
                    else if (e.ValueKind != JsonValueKind.Null)
                    {
                        genEos.Add(Id(file, "eos_token_id", e));
                    }
                }
            }
        }

        return new TokenizerConfig(bos, eos, addBos, added, genBos, genEos)
        {
            AddEosToken = addEos,
            Legacy = legacy,
            TokenizerClass = tokenizerClass,
        };
    }

    private static bool? Flag(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    /// <summary>A token id: a whole JSON number >= 0 (whether it is in the vocabulary is checked by the tokenizer).</summary>
    private static int Id(string file, string field, JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int id) && id >= 0
            ? id
            : throw Field(file, field, value, "a token id (a whole number >= 0)");

    private static InvalidDataException Field(string file, string field, JsonElement value, string expected)
    {
        string text = value.GetRawText();
        return new InvalidDataException($"{file}: field '{field}' is {(text.Length > 60 ? text[..60] + "..." : text)}; it must be {expected}. " +
                                        $"Fix or remove '{field}' in {Path.GetFileName(file)}.");
    }

    /// <summary>A token field may be a string, null, or an AddedToken object <c>{"content": ...}</c>.</summary>
    private static string? TokenText(string file, JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v))
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw Field(file, name, v, "the token's text (a string, or an object with \"content\")"),
        };
    }

    private static JsonDocument? TryParse(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }
    }
}
