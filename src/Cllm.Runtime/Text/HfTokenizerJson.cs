using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Cllm.Text;

/// <summary>A Hugging Face tokenizer.json read into our pipeline, with what TextTokenizer needs besides.</summary>
/// <param name="ByteLevel">Byte-level BPE (GPT-2, Qwen, LLaMA-3, DeepSeek) rather than SentencePiece-style BPE
/// over characters with "▁" for spaces and byte fallback (LLaMA-2, Mistral, Gemma).</param>
internal sealed record HfTokenizerFile(TokenizerPipeline Pipeline, bool ByteLevel);

/// <summary>
/// Reads Hugging Face's tokenizer.json for BPE models, byte-level or SentencePiece-style: normalizers,
/// pre-tokenizers, the BPE model (merges, byte_fallback, ignore_merges, unk), added tokens, the
/// post-processor's template and the decoder, each the way the reference applies them.
/// </summary>
internal static class HfTokenizerJson
{
    // GPT-2's pattern: what a ByteLevel pre-tokenizer with use_regex=true splits on.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Reads the file; throws <see cref="InvalidDataException"/> naming the file and field for what is broken or unsupported.</summary>
    public static HfTokenizerFile Read(string path)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'{path}' has no \"model\" object; it is not a Hugging Face tokenizer.json.");
        }

        string modelType = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (modelType != "BPE")
        {
            throw new InvalidDataException($"'{path}': model.type '{modelType}' is not supported (only BPE); use a folder with a BPE tokenizer.");
        }

        foreach (string affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (NonEmptyString(model, affix) is string value)
            {
                throw new InvalidDataException($"'{path}': model.{affix} \"{value}\" is not supported (only empty or null).");
            }
        }

        var vocab = ReadVocab(path, model);
        var merges = ReadMerges(path, model);
        if (merges.Count == 0 && vocab.Keys.Any(k => k.Length > 1))
        {
            // Without merges BPE never builds a token longer than one symbol: every text would come out one id
            // per byte, which the model was not trained on. Refused, so a tokenizer.model beside it wins.
            throw new InvalidDataException($"'{path}': model.merges is missing or empty although model.vocab has multi-character " +
                "tokens (the file is incomplete); download the complete tokenizer.json.");
        }

        var added = ReadAddedTokens(path, root);
        int? unk = NonEmptyString(model, "unk_token") is string u ? vocab.TryGetValue(u, out int uid) ? uid : added.FirstOrDefault(a => a.Content == u)?.Id : null;
        var bpe = BpeModel.FromMerges(
            path, vocab, merges, unk,
            byteFallback: IsTrue(model, "byte_fallback"),
            fuseUnknown: IsTrue(model, "fuse_unk"),
            ignoreMerges: IsTrue(model, "ignore_merges"));

        var normalizer = ReadNormalizer(path, Child(root, "normalizer"));
        var preTokenizer = new List<PreTokenizeStep>();
        bool byteLevel = false;
        ReadPreTokenizer(path, Child(root, "pre_tokenizer"), preTokenizer, ref byteLevel);

        var addedContents = added.Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
        var decoder = new List<DecodeStep>();
        ReadDecoder(path, Child(root, "decoder"), decoder, addedContents, ref byteLevel);

        var prefix = new List<int>();
        var suffix = new List<int>();
        ReadPostProcessor(path, Child(root, "post_processor"), prefix, suffix);

        var pipeline = new TokenizerPipeline(bpe, added, normalizer, preTokenizer, prefix, suffix, decoder);
        return new HfTokenizerFile(pipeline, byteLevel);
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
    private static List<(string, string)> ReadMerges(string path, JsonElement model)
    {
        var merges = new List<(string, string)>();
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
                string s = item.GetString()!;
                int space = s.IndexOf(' ', 1);
                if (space < 0)
                {
                    throw new InvalidDataException($"'{path}': model.merges[{index}] \"{s}\" is not \"a b\".");
                }

                merges.Add((s[..space], s[(space + 1)..]));
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() == 2 &&
                     item[0].ValueKind == JsonValueKind.String && item[1].ValueKind == JsonValueKind.String)
            {
                merges.Add((item[0].GetString()!, item[1].GetString()!));
            }
            else
            {
                throw new InvalidDataException($"'{path}': model.merges[{index}] is neither \"a b\" nor [\"a\", \"b\"].");
            }

            index++;
        }

        return merges;
    }

    private static List<AddedTokenSpec> ReadAddedTokens(string path, JsonElement root)
    {
        var added = new List<AddedTokenSpec>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return added;
        }

        foreach (var a in list.EnumerateArray())
        {
            if (a.ValueKind != JsonValueKind.Object ||
                !a.TryGetProperty("id", out var id) || !id.TryGetInt32(out int idValue) || idValue < 0 ||
                !a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"'{path}': an added_tokens entry lacks \"id\" (a whole number >= 0) or \"content\" (a string): {a.GetRawText()}");
            }

            bool special = IsTrue(a, "special");
            // "normalized" defaults to the opposite of "special", as in the reference.
            bool normalized = a.TryGetProperty("normalized", out var n) && n.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? n.GetBoolean() : !special;
            added.Add(new AddedTokenSpec(idValue, c.GetString()!, special, IsTrue(a, "lstrip"), IsTrue(a, "rstrip"), normalized));
        }

        return added;
    }

    private static Func<string, string>? ReadNormalizer(string path, JsonElement node)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        string type = TypeOf(node);
        switch (type)
        {
            case "Sequence":
                var steps = Array(path, node, "normalizers", "Sequence normalizer")
                    .Select(x => ReadNormalizer(path, x)).OfType<Func<string, string>>().ToList();
                return steps.Count == 0 ? null : text => steps.Aggregate(text, (s, f) => f(s));
            case "NFC":
                return s => s.Normalize(NormalizationForm.FormC);
            case "NFD":
                return s => s.Normalize(NormalizationForm.FormD);
            case "NFKC":
                return s => s.Normalize(NormalizationForm.FormKC);
            case "NFKD":
                return s => s.Normalize(NormalizationForm.FormKD);
            case "Lowercase":
                return s => s.ToLowerInvariant();
            case "StripAccents":
                return s => NonSpacingMarks().Replace(s, "");
            case "Strip":
                bool left = IsTrue(node, "strip_left"), right = IsTrue(node, "strip_right");
                return s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s;
            case "Prepend":
                string prepend = NonEmptyString(node, "prepend") ?? "";
                return s => prepend + s;
            case "Replace":
                var pattern = PatternRegex(path, node, "Replace normalizer");
                string content = node.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
                return s => pattern.Regex.Replace(s, content.Replace("$", "$$", StringComparison.Ordinal));
            default:
                throw new InvalidDataException($"'{path}': normalizer '{type}' is not supported.");
        }
    }

    private static void ReadPreTokenizer(string path, JsonElement node, List<PreTokenizeStep> steps, ref bool byteLevel)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        string type = TypeOf(node);
        switch (type)
        {
            case "Sequence":
                foreach (var child in Array(path, node, "pretokenizers", "Sequence pre-tokenizer"))
                {
                    ReadPreTokenizer(path, child, steps, ref byteLevel);
                }

                break;

            case "Split":
                string behavior = node.TryGetProperty("behavior", out var b) && b.ValueKind == JsonValueKind.String ? b.GetString()! : "Isolated";
                var split = PatternRegex(path, node, "Split pre-tokenizer");
                steps.Add(SplitStep(path, split, behavior, IsTrue(node, "invert")));
                break;

            case "ByteLevel":
                byteLevel = true;
                bool addPrefixSpace = IsTrue(node, "add_prefix_space");
                // use_regex defaults to true: GPT-2 style files carry no Split and rely on it.
                var gpt2 = node.TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.False ? null : new CodePointRegex(NewRegex(Gpt2Pattern));
                steps.Add((piece, _, output) =>
                {
                    string text = addPrefixSpace && !piece.StartsWith(' ') ? " " + piece : piece;
                    if (gpt2 is null)
                    {
                        output.Add(ByteLevelAlphabet.ToTokenString(Encoding.UTF8.GetBytes(text)));
                        return;
                    }

                    foreach (var (index, length) in gpt2.Matches(text))
                    {
                        output.Add(ByteLevelAlphabet.ToTokenString(Encoding.UTF8.GetBytes(text.Substring(index, length))));
                    }
                });
                break;

            case "Metaspace":
                steps.Add(MetaspaceStep(path, node));
                break;

            case "Digits":
                var digits = new CodePointRegex(NewRegex(IsTrue(node, "individual_digits") ? "[0-9]" : "[0-9]+"));
                steps.Add(SplitStep(path, digits, "Isolated", invert: false));
                break;

            case "WhitespaceSplit":
                var words = new CodePointRegex(NewRegex(@"\S+"));
                steps.Add((piece, _, output) => output.AddRange(words.Matches(piece).Select(m => piece.Substring(m.Index, m.Length))));
                break;

            default:
                throw new InvalidDataException($"'{path}': pre-tokenizer '{type}' is not supported.");
        }
    }

    /// <summary>Hugging Face's Split: what happens to the matches ("delimiters") and the text between them.</summary>
    private static PreTokenizeStep SplitStep(string path, CodePointRegex regex, string behavior, bool invert)
    {
        if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext" or "Contiguous"))
        {
            throw new InvalidDataException($"'{path}': Split behavior '{behavior}' is not supported.");
        }

        return (piece, _, output) =>
        {
            // Parts in order, each marked as a delimiter (a match, or a non-match when inverted) or not.
            var parts = new List<(string Text, bool Delimiter)>();
            int cursor = 0;
            foreach (var (index, length) in regex.Matches(piece))
            {
                if (index > cursor)
                {
                    parts.Add((piece[cursor..index], invert));
                }

                parts.Add((piece.Substring(index, length), !invert));
                cursor = index + length;
            }

            if (cursor < piece.Length)
            {
                parts.Add((piece[cursor..], invert));
            }

            switch (behavior)
            {
                case "Isolated":
                    output.AddRange(parts.Select(p => p.Text));
                    break;
                case "Removed":
                    output.AddRange(parts.Where(p => !p.Delimiter).Select(p => p.Text));
                    break;
                case "MergedWithPrevious":
                    var merged = new List<string>();
                    foreach (var (text, delimiter) in parts)
                    {
                        if (delimiter && merged.Count > 0)
                        {
                            merged[^1] += text;
                        }
                        else
                        {
                            merged.Add(text);
                        }
                    }

                    output.AddRange(merged);
                    break;
                case "MergedWithNext":
                    string pending = "";
                    foreach (var (text, delimiter) in parts)
                    {
                        if (delimiter)
                        {
                            pending += text;
                        }
                        else
                        {
                            output.Add(pending + text);
                            pending = "";
                        }
                    }

                    if (pending.Length > 0)
                    {
                        output.Add(pending);
                    }

                    break;
                default: // Contiguous: runs of delimiters become one piece
                    string run = "";
                    foreach (var (text, delimiter) in parts)
                    {
                        if (delimiter)
                        {
                            run += text;
                            continue;
                        }

                        if (run.Length > 0)
                        {
                            output.Add(run);
                            run = "";
                        }

                        output.Add(text);
                    }

                    if (run.Length > 0)
                    {
                        output.Add(run);
                    }

                    break;
            }
        };
    }

    /// <summary>Metaspace: spaces become the replacement ("▁"), one is put in front per prepend_scheme, and
    /// with split the text is cut before each replacement character.</summary>
    private static PreTokenizeStep MetaspaceStep(string path, JsonElement node)
    {
        string replacement = NonEmptyString(node, "replacement") ?? "\u2581";
        string scheme = NonEmptyString(node, "prepend_scheme")
            ?? (node.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.False ? "never" : "always");
        if (scheme is not ("always" or "first" or "never"))
        {
            throw new InvalidDataException($"'{path}': Metaspace prepend_scheme '{scheme}' is not one of always, first, never.");
        }

        bool split = !(node.TryGetProperty("split", out var s) && s.ValueKind == JsonValueKind.False);
        return (piece, sectionIndex, output) =>
        {
            string text = piece.Replace(" ", replacement, StringComparison.Ordinal);
            if (!text.StartsWith(replacement, StringComparison.Ordinal) && (scheme == "always" || (scheme == "first" && sectionIndex == 0)))
            {
                text = replacement + text;
            }

            if (!split)
            {
                output.Add(text);
                return;
            }

            int start = 0;
            for (int i = text.IndexOf(replacement, 1, StringComparison.Ordinal); i > 0; i = text.IndexOf(replacement, i + 1, StringComparison.Ordinal))
            {
                output.Add(text[start..i]);
                start = i;
            }

            output.Add(text[start..]);
        };
    }

    private static void ReadDecoder(string path, JsonElement node, List<DecodeStep> steps, HashSet<string> addedContents, ref bool byteLevel)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        string type = TypeOf(node);
        switch (type)
        {
            case "Sequence":
                foreach (var child in Array(path, node, "decoders", "Sequence decoder"))
                {
                    ReadDecoder(path, child, steps, addedContents, ref byteLevel);
                }

                break;

            case "ByteLevel":
                byteLevel = true;
                steps.Add(tokens => ByteLevelDecode(tokens, addedContents));
                break;

            case "Replace":
                var pattern = PatternRegex(path, node, "Replace decoder");
                string content = node.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
                string escaped = content.Replace("$", "$$", StringComparison.Ordinal);
                steps.Add(tokens => tokens.Select(x => pattern.Regex.Replace(x, escaped)).ToList());
                break;

            case "ByteFallback":
                steps.Add(ByteFallbackDecode);
                break;

            case "Fuse":
                steps.Add(tokens => [string.Concat(tokens)]);
                break;

            case "Strip":
                string strip = NonEmptyString(node, "content") ?? " ";
                int start = node.TryGetProperty("start", out var st) && st.TryGetInt32(out int sv) ? sv : 0;
                int stop = node.TryGetProperty("stop", out var sp) && sp.TryGetInt32(out int pv) ? pv : 0;
                steps.Add(tokens => tokens.Select(x => StripToken(x, strip, start, stop)).ToList());
                break;

            case "Metaspace":
                string replacement = NonEmptyString(node, "replacement") ?? "\u2581";
                string scheme = NonEmptyString(node, "prepend_scheme") ?? "always";
                steps.Add(tokens => tokens.Select((x, i) =>
                {
                    string text = x.Replace(replacement, " ", StringComparison.Ordinal);
                    return i == 0 && scheme != "never" && text.StartsWith(' ') ? text[1..] : text;
                }).ToList());
                break;

            default:
                throw new InvalidDataException($"'{path}': decoder '{type}' is not supported.");
        }
    }

    internal static List<string> ByteLevelDecode(List<string> tokens, HashSet<string> addedContents)
    {
        var result = new List<string>();
        var bytes = new List<byte>();
        foreach (string token in tokens)
        {
            if (addedContents.Contains(token))
            {
                if (bytes.Count > 0)
                {
                    result.Add(TokenizerPipeline.Utf8(bytes));
                    bytes.Clear();
                }

                result.Add(token);
                continue;
            }

            foreach (char ch in token)
            {
                if (ByteLevelAlphabet.TryGetByte(ch, out byte b))
                {
                    bytes.Add(b);
                }
                else
                {
                    bytes.AddRange(Encoding.UTF8.GetBytes(ch.ToString()));
                }
            }
        }

        if (bytes.Count > 0)
        {
            result.Add(TokenizerPipeline.Utf8(bytes));
        }

        return result;
    }

    internal static List<string> ByteFallbackDecode(List<string> tokens)
    {
        var result = new List<string>();
        var bytes = new List<byte>();
        foreach (string token in tokens)
        {
            int b = TokenizerPipeline.ByteOfPiece(token);
            if (b >= 0)
            {
                bytes.Add((byte)b);
                continue;
            }

            if (bytes.Count > 0)
            {
                result.Add(TokenizerPipeline.Utf8(bytes));
                bytes.Clear();
            }

            result.Add(token);
        }

        if (bytes.Count > 0)
        {
            result.Add(TokenizerPipeline.Utf8(bytes));
        }

        return result;
    }

    private static string StripToken(string token, string content, int start, int stop)
    {
        int from = 0;
        for (int i = 0; i < start && from < token.Length && token.AsSpan(from).StartsWith(content, StringComparison.Ordinal); i++)
        {
            from += content.Length;
        }

        int to = token.Length;
        for (int i = 0; i < stop && to - content.Length >= from && token.AsSpan(0, to).EndsWith(content, StringComparison.Ordinal); i++)
        {
            to -= content.Length;
        }

        return token[from..to];
    }

    /// <summary>
    /// The ids a post-processor puts around a single sequence when special tokens are wanted:
    /// TemplateProcessing's "single" template, Roberta/Bert's cls and sep; ByteLevel adds none.
    /// </summary>
    private static void ReadPostProcessor(string path, JsonElement node, List<int> prefix, List<int> suffix)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        string type = TypeOf(node);
        switch (type)
        {
            case "Sequence":
                foreach (var child in Array(path, node, "processors", "Sequence post-processor"))
                {
                    ReadPostProcessor(path, child, prefix, suffix);
                }

                break;

            case "ByteLevel":
                break;

            case "TemplateProcessing":
                var single = Array(path, node, "single", "TemplateProcessing");
                var specials = node.TryGetProperty("special_tokens", out var sp) && sp.ValueKind == JsonValueKind.Object ? sp : default;
                bool seenSequence = false;
                foreach (var item in single)
                {
                    if (item.TryGetProperty("Sequence", out _))
                    {
                        seenSequence = true;
                        continue;
                    }

                    if (!item.TryGetProperty("SpecialToken", out var tokenItem) || NonEmptyString(tokenItem, "id") is not string name)
                    {
                        throw new InvalidDataException($"'{path}': a TemplateProcessing \"single\" item is neither Sequence nor SpecialToken.");
                    }

                    if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var entry) ||
                        !entry.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                    {
                        throw new InvalidDataException($"'{path}': TemplateProcessing uses special token \"{name}\" that its special_tokens does not define.");
                    }

                    (seenSequence ? suffix : prefix).AddRange(ids.EnumerateArray().Select(x => x.GetInt32()));
                }

                break;

            case "RobertaProcessing" or "BertProcessing":
                if (node.TryGetProperty("cls", out var cls) && cls.ValueKind == JsonValueKind.Array && cls.GetArrayLength() == 2)
                {
                    prefix.Add(cls[1].GetInt32());
                }

                if (node.TryGetProperty("sep", out var sep) && sep.ValueKind == JsonValueKind.Array && sep.GetArrayLength() == 2)
                {
                    suffix.Add(sep[1].GetInt32());
                }

                break;

            default:
                throw new InvalidDataException($"'{path}': post-processor '{type}' is not supported.");
        }
    }

    private static CodePointRegex PatternRegex(string path, JsonElement node, string what)
    {
        if (node.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object)
        {
            if (p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return new CodePointRegex(NewRegex(r.GetString()!));
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidDataException($"'{path}': {what} regex is not valid for .NET: {ex.Message}", ex);
                }
            }

            if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String)
            {
                return new CodePointRegex(NewRegex(Regex.Escape(s.GetString()!)));
            }
        }

        throw new InvalidDataException($"'{path}': {what} has no pattern.Regex or pattern.String.");
    }

    private static Regex NewRegex(string pattern) => new(pattern, RegexOptions.CultureInvariant);

    private static Regex NonSpacingMarks() => new(@"\p{Mn}", RegexOptions.CultureInvariant);

    private static JsonElement Child(JsonElement obj, string name) => obj.TryGetProperty(name, out var v) ? v : default;

    private static JsonElement.ArrayEnumerator Array(string path, JsonElement node, string name, string what) =>
        node.TryGetProperty(name, out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray()
            : throw new InvalidDataException($"'{path}': {what} has no \"{name}\" array.");

    private static bool IsTrue(JsonElement obj, string name) => obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    private static string TypeOf(JsonElement node) =>
        node.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";

    private static string? NonEmptyString(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0
            ? v.GetString() : null;
}
