using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Cllm.Text;

/// <summary>A byte-level BPE built from a Hugging Face tokenizer.json, with what TextTokenizer needs besides.</summary>
internal sealed record HfByteLevelBpe(
    BpeTokenizer Tokenizer,
    IReadOnlyDictionary<string, int> Vocabulary,
    IReadOnlyList<AddedToken> AddedTokens,
    string? TemplateBosToken,
    Func<BpeTokenizer> CreateWithoutSpecialTokens);

/// <summary>
/// Reads the byte-level BPE flavour of Hugging Face's tokenizer.json (GPT-2, Qwen2, DeepSeek-Coder,
/// LLaMA-3 HF), which Microsoft.ML.Tokenizers 2.0.1 cannot read itself.
/// </summary>
internal static class HfTokenizerJson
{
    // GPT-2's pattern: what a ByteLevel pre-tokenizer with use_regex=true splits on.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>
    /// Returns null with a reason when the file is valid but not byte-level BPE (e.g. LLaMA-2's
    /// SentencePiece-style BPE or a Unigram model): such folders also ship tokenizer.model, which is
    /// then the better source. Throws <see cref="InvalidDataException"/> for broken or unsupported files.
    /// </summary>
    public static HfByteLevelBpe? TryRead(string path, out string? notByteLevelReason)
    {
        notByteLevelReason = null;
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'{path}' has no \"model\" object; it is not a Hugging Face tokenizer.json.");
        }

        string modelType = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (modelType != "BPE")
        {
            notByteLevelReason = $"model type '{modelType}' is not byte-level BPE";
            return null;
        }

        var preTokenizer = root.TryGetProperty("pre_tokenizer", out var pt) ? pt : default;
        if (!ContainsByteLevel(preTokenizer))
        {
            notByteLevelReason = "its BPE is not byte-level (no ByteLevel pre-tokenizer; SentencePiece-style BPE)";
            return null;
        }

        var vocab = ReadVocab(path, model);
        var merges = ReadMerges(path, model);
        var added = ReadAddedTokens(path, root);
        var splits = new List<Regex>();
        CollectSplits(path, preTokenizer, splits);

        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var a in added)
        {
            specials[a.Content] = a.Id;
        }

        // Added tokens with lstrip/rstrip/single_word flags are matched literally; those flags only
        // matter for mask-style tokens of encoder models, not for the chat markers of decoder LLMs.
        // Read everything now: the JSON document is gone when the tokenizer without specials is made (lazily).
        var normalizer = ReadNormalizer(path, root.TryGetProperty("normalizer", out var n) ? n : default);
        string? unknown = NonEmptyString(model, "unk_token"), prefix = NonEmptyString(model, "continuing_subword_prefix"),
            suffix = NonEmptyString(model, "end_of_word_suffix");
        bool fuse = model.TryGetProperty("fuse_unk", out var fu) && fu.ValueKind == JsonValueKind.True;
        BpeOptions Options(bool withSpecials) => new(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = specials.Count == 0 || !withSpecials ? null : specials,
            PreTokenizer = new SplitPreTokenizer(splits, withSpecials ? specials.Keys : []),
            Normalizer = normalizer,
            UnknownToken = unknown,
            ContinuingSubwordPrefix = prefix,
            EndOfWordSuffix = suffix,
            FuseUnknownTokens = fuse,
        };
        // model.ignore_merges (LLaMA-3) has no BpeOptions counterpart; it only changes results for
        // words that are in the vocabulary but unreachable by merges, which the real files avoid.

        BpeTokenizer tokenizer;
        try
        {
            tokenizer = BpeTokenizer.Create(Options(withSpecials: true));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"'{path}': Microsoft.ML.Tokenizers rejected its BPE model: {ex.Message}", ex);
        }

        // The same model with added tokens left to ordinary BPE: how text that must not hold markers is encoded.
        BpeTokenizer WithoutSpecialTokens() => BpeTokenizer.Create(Options(withSpecials: false));

        var post = root.TryGetProperty("post_processor", out var pp) ? pp : default;
        return new HfByteLevelBpe(tokenizer, vocab, added, TemplateBos(post), WithoutSpecialTokens);
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {ex.Message}", ex);
        }
    }

    private static bool ContainsByteLevel(JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        if (TypeOf(node) == "ByteLevel")
        {
            return true;
        }

        return node.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array &&
               list.EnumerateArray().Any(ContainsByteLevel);
    }

    private static Dictionary<string, int> ReadVocab(string path, JsonElement model)
    {
        if (!model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'{path}': model.vocab is missing or not an object.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
            {
                throw new InvalidDataException($"'{path}': model.vocab entry \"{p.Name}\" has no valid id.");
            }

            vocab[p.Name] = id;
        }

        if (vocab.Count == 0)
        {
            throw new InvalidDataException($"'{path}': model.vocab is empty.");
        }

        return vocab;
    }

    /// <summary>Merges are "a b" strings (older files) or ["a", "b"] pairs (tokenizers 0.20+).</summary>
    private static List<string> ReadMerges(string path, JsonElement model)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind == JsonValueKind.Null)
        {
            return merges;
        }

        if (m.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"'{path}': model.merges is not an array.");
        }

        int index = 0;
        foreach (var item in m.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String)
            {
                merges.Add(item.GetString()!);
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() == 2 &&
                     item[0].ValueKind == JsonValueKind.String && item[1].ValueKind == JsonValueKind.String)
            {
                string a = item[0].GetString()!, b = item[1].GetString()!;
                // BpeOptions takes merges as "a b" text, so a part containing a space cannot be passed on;
                // byte-level symbols never contain one (the space byte is "Ġ").
                if (a.Contains(' ') || b.Contains(' '))
                {
                    throw new InvalidDataException($"'{path}': merge #{index} [\"{a}\", \"{b}\"] contains a space, which Microsoft.ML.Tokenizers' BpeOptions cannot represent.");
                }

                merges.Add(a + " " + b);
            }
            else
            {
                throw new InvalidDataException($"'{path}': model.merges[{index}] is neither \"a b\" nor [\"a\", \"b\"].");
            }

            index++;
        }

        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(string path, JsonElement root)
    {
        var added = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return added;
        }

        foreach (var a in list.EnumerateArray())
        {
            if (a.ValueKind != JsonValueKind.Object ||
                !a.TryGetProperty("id", out var id) || !id.TryGetInt32(out int idValue) ||
                !a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"'{path}': an added_tokens entry lacks \"id\" or \"content\".");
            }

            added.Add(new AddedToken(idValue, c.GetString()!, a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True));
        }

        return added;
    }

    private static void CollectSplits(string path, JsonElement node, List<Regex> splits)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        switch (TypeOf(node))
        {
            case "Sequence":
                if (!node.TryGetProperty("pretokenizers", out var children) || children.ValueKind != JsonValueKind.Array)
                {
                    throw new InvalidDataException($"'{path}': Sequence pre-tokenizer has no \"pretokenizers\" array.");
                }

                foreach (var child in children.EnumerateArray())
                {
                    CollectSplits(path, child, splits);
                }

                break;

            case "Split":
                string behavior = node.TryGetProperty("behavior", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString()! : "Isolated";
                bool invert = node.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True;
                if (behavior != "Isolated" || invert)
                {
                    throw new InvalidDataException($"'{path}': Split pre-tokenizer with behavior '{behavior}'{(invert ? " and invert" : "")} is not supported (only Isolated).");
                }

                splits.Add(SplitRegex(path, node));
                break;

            case "ByteLevel":
                if (node.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                {
                    throw new InvalidDataException($"'{path}': ByteLevel with add_prefix_space=true is not supported.");
                }

                // use_regex defaults to true: GPT-2 style files carry no Split and rely on it.
                if (!node.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False)
                {
                    splits.Add(NewRegex(Gpt2Pattern));
                }

                break;

            case "Digits":
                bool individual = node.TryGetProperty("individual_digits", out var id) && id.ValueKind == JsonValueKind.True;
                splits.Add(NewRegex(individual ? @"\p{N}" : @"\p{N}+"));
                break;

            default:
                throw new InvalidDataException($"'{path}': pre-tokenizer '{TypeOf(node)}' is not supported.");
        }
    }

    private static Regex SplitRegex(string path, JsonElement split)
    {
        if (split.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object)
        {
            if (p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return NewRegex(r.GetString()!);
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidDataException($"'{path}': Split regex is not valid for .NET: {ex.Message}", ex);
                }
            }

            if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String)
            {
                return NewRegex(Regex.Escape(s.GetString()!));
            }
        }

        throw new InvalidDataException($"'{path}': Split pre-tokenizer has no pattern.Regex or pattern.String.");
    }

    private static Regex NewRegex(string pattern) => new(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    private static Normalizer? ReadNormalizer(string path, JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        string type = TypeOf(node);
        if (type == "Sequence")
        {
            if (!node.TryGetProperty("normalizers", out var children) || children.ValueKind != JsonValueKind.Array)
            {
                throw new InvalidDataException($"'{path}': Sequence normalizer has no \"normalizers\" array.");
            }

            var list = children.EnumerateArray().Select(x => ReadNormalizer(path, x)).Where(x => x is not null).ToList();
            return list.Count switch
            {
                0 => null,
                1 => list[0],
                _ => throw new InvalidDataException($"'{path}': a Sequence of several normalizers is not supported."),
            };
        }

        return type switch
        {
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            _ => throw new InvalidDataException($"'{path}': normalizer '{type}' is not supported."),
        };
    }

    /// <summary>The special token a TemplateProcessing post-processor puts in front of every sequence (LLaMA-3's BOS).</summary>
    private static string? TemplateBos(JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (TypeOf(node) == "Sequence" && node.TryGetProperty("processors", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            return list.EnumerateArray().Select(TemplateBos).FirstOrDefault(x => x is not null);
        }

        if (TypeOf(node) == "TemplateProcessing" && node.TryGetProperty("single", out var single) &&
            single.ValueKind == JsonValueKind.Array && single.GetArrayLength() > 0 &&
            single[0].TryGetProperty("SpecialToken", out var st) && st.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
        {
            return id.GetString();
        }

        return null;
    }

    private static string TypeOf(JsonElement node) =>
        node.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";

    private static string? NonEmptyString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0 ? v.GetString() : null;
}
