using System.Text.Json;
using Cllm.Text;

namespace Cllm.Checkpoints;

/// <summary>
/// A tokenizer as llama.cpp reads it from GGUF metadata (<c>tokenizer.ggml.*</c>): SentencePiece models become a
/// "llama" vocabulary (pieces, scores, token types, byte tokens), byte-level BPE (Hugging Face tokenizer.json,
/// or a tiktoken file, whose merges are recovered from the ranks) a "gpt2" vocabulary with merges and the name
/// of llama.cpp's pre-tokenizer that matches the model's split regex.
/// </summary>
public sealed class GgufVocabulary
{
    /// <summary>llama.cpp's token types (the same numbers as SentencePiece's piece types).</summary>
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    // Split regexes of the byte-level BPE families llama.cpp has a pre-tokenizer for, as tokenizer.json writes them.
    const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    GgufVocabulary(string model, IReadOnlyList<string> tokens, IReadOnlyList<int> types)
    {
        Model = model;
        Tokens = tokens;
        TokenTypes = types;
    }

    /// <summary>"llama" (SentencePiece) or "gpt2" (byte-level BPE).</summary>
    public string Model { get; }

    /// <summary>llama.cpp's pre-tokenizer name for "gpt2" vocabularies ("gpt2", "qwen2", "llama-bpe").</summary>
    public string? PreTokenizer { get; private init; }

    public IReadOnlyList<string> Tokens { get; private init; }
    public IReadOnlyList<int> TokenTypes { get; private init; }
    public IReadOnlyList<float>? Scores { get; private init; }
    public IReadOnlyList<string>? Merges { get; private init; }
    public int? BosId { get; private init; }
    public int? EosId { get; private init; }
    public int? UnknownId { get; private init; }
    public int? PaddingId { get; private init; }
    public bool AddBos { get; private init; }
    /// <summary>SentencePiece's add_dummy_prefix (a "▁" in front of the text).</summary>
    public bool? AddSpacePrefix { get; private init; }

    /// <summary>
    /// The vocabulary of the tokenizer <paramref name="tokenizer"/> loaded from <paramref name="modelDirectory"/>
    /// (the same files it read). Special ids (BOS, EOS, add BOS) are the ones the engine uses.
    /// </summary>
    /// <exception cref="NotSupportedException">The tokenizer is one llama.cpp would not tokenize the same way.</exception>
    public static GgufVocabulary FromModelFolder(string modelDirectory, TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var dir = Path.GetFullPath(modelDirectory);
        var config = TokenizerConfig.Read(dir);
        return tokenizer.Kind switch
        {
            TextTokenizer.SentencePieceKind => FromSentencePiece(FindModelFile(dir), tokenizer, config),
            TextTokenizer.BpeKind => FromTokenizerJson(Path.Combine(dir, "tokenizer.json"), tokenizer, config),
            TextTokenizer.TiktokenKind => FromTiktoken(FindModelFile(dir), tokenizer),
            _ => throw new NotSupportedException($"Tokenizer kind '{tokenizer.Kind}' has no GGUF vocabulary form."),
        };
    }

    static string FindModelFile(string dir)
    {
        foreach (var path in new[] { Path.Combine(dir, "tokenizer.model"), Path.Combine(dir, "original", "tokenizer.model") })
            if (File.Exists(path)) return path;
        throw new FileNotFoundException($"No tokenizer.model in '{dir}'.", Path.Combine(dir, "tokenizer.model"));
    }

    static GgufVocabulary FromSentencePiece(string path, TextTokenizer tokenizer, TokenizerConfig config)
    {
        var sp = GgufSentencePiece.Read(path);
        if (sp.ModelType != GgufSentencePiece.Bpe)
            throw new NotSupportedException(
                $"'{path}' is a SentencePiece {(sp.ModelType == GgufSentencePiece.Unigram ? "unigram" : $"type-{sp.ModelType}")} model; " +
                "llama.cpp's \"llama\" vocabulary tokenizes like SentencePiece BPE only, so ids would differ.");
        if (sp.NormalizerName is not ("" or "identity"))
            throw new NotSupportedException(
                $"'{path}' uses SentencePiece normalization '{sp.NormalizerName}', which llama.cpp's \"llama\" vocabulary does not apply; only identity is exported.");
        var missingBytes = Enumerable.Range(0, 256).Where(b => !sp.Pieces.Any(p => p.Type == GgufSentencePiece.Byte && p.Piece == $"<0x{b:X2}>")).ToList();
        if (missingBytes.Count > 0)
            throw new NotSupportedException(
                $"'{path}' lacks byte-fallback pieces (<0x{missingBytes[0]:X2}> and {missingBytes.Count - 1} more): llama.cpp aborts on characters outside " +
                "a \"llama\" vocabulary without all 256 <0xXX> byte tokens.");

        var tokens = sp.Pieces.Select(p => p.Piece).ToList();
        var scores = sp.Pieces.Select(p => p.Score).ToList();
        var types = sp.Pieces.Select(p => p.Type is >= Normal and <= Byte ? p.Type : Normal).ToList();
        // Tokens that tokenizer_config.json adds or marks special: control when special (what llama.cpp's own
        // converter does), user-defined otherwise; ids past the model's pieces extend the list.
        foreach (var added in config.AddedTokens.OrderBy(a => a.Id))
        {
            while (tokens.Count <= added.Id)
            {
                tokens.Add($"[PAD{tokens.Count}]");
                scores.Add(0);
                types.Add(Unused);
            }
            if (types[added.Id] is Unknown or Byte) continue; // <unk> and byte pieces keep their meaning
            tokens[added.Id] = added.Content;
            types[added.Id] = added.Special ? Control : UserDefined;
        }

        return new GgufVocabulary("llama", tokens, types)
        {
            Scores = scores,
            BosId = tokenizer.BosId ?? NonNegative(sp.BosId),
            EosId = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0] : NonNegative(sp.EosId),
            UnknownId = NonNegative(sp.UnknownId),
            PaddingId = NonNegative(sp.PadId),
            AddBos = tokenizer.AddBos,
            AddSpacePrefix = sp.AddDummyPrefix,
        };
    }

    static int? NonNegative(int id) => id >= 0 ? id : null;

    static GgufVocabulary FromTokenizerJson(string path, TextTokenizer tokenizer, TokenizerConfig config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        var pre = PreTokenizerName(path, root.TryGetProperty("pre_tokenizer", out var p) ? p : default);

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var m) && m.ValueKind == JsonValueKind.Array)
            foreach (var item in m.EnumerateArray())
                merges.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : item[0].GetString() + " " + item[1].GetString());

        var special = new HashSet<int>();
        var userDefined = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
                (a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True ? special : userDefined).Add(a.GetProperty("id").GetInt32());
        foreach (var a in config.AddedTokens)
            (a.Special ? special : userDefined).Add(a.Id);
        userDefined.ExceptWith(special);

        var (tokens, types) = TokensFrom(tokenizer, id => special.Contains(id) ? Control : userDefined.Contains(id) ? UserDefined : Normal);
        return new GgufVocabulary("gpt2", tokens, types)
        {
            PreTokenizer = pre,
            Merges = merges,
            BosId = tokenizer.BosId,
            EosId = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0] : null,
            AddBos = tokenizer.AddBos,
        };
    }

    static GgufVocabulary FromTiktoken(string path, TextTokenizer tokenizer)
    {
        var ranks = TiktokenFile.ReadRanks(path, File.ReadAllBytes(path));
        var (tokens, types) = TokensFrom(tokenizer, id => ranks.ContainsKey(id) ? Normal : Control);
        return new GgufVocabulary("gpt2", tokens, types)
        {
            PreTokenizer = "llama-bpe",
            Merges = RecoverMerges(ranks),
            BosId = tokenizer.BosId,
            EosId = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0] : null,
            AddBos = tokenizer.AddBos,
        };
    }

    static (List<string>, List<int>) TokensFrom(TextTokenizer tokenizer, Func<int, int> type)
    {
        var tokens = new List<string>(tokenizer.VocabularySize);
        var types = new List<int>(tokenizer.VocabularySize);
        for (var id = 0; id < tokenizer.VocabularySize; id++)
        {
            var token = tokenizer.IdToToken(id);
            tokens.Add(token ?? $"[PAD{id}]");
            types.Add(token is null ? Unused : type(id));
        }
        return (tokens, types);
    }

    /// <summary>
    /// tiktoken stores ranks, not merges: the merge that makes a token is the last step of byte-pair encoding
    /// its bytes with the lower ranks only, which always ends in exactly two parts.
    /// </summary>
    static List<string> RecoverMerges(Dictionary<int, byte[]> ranks)
    {
        var rankOf = new Dictionary<string, int>(ranks.Count, StringComparer.Ordinal);
        foreach (var (rank, bytes) in ranks) rankOf[Convert.ToHexString(bytes)] = rank;
        var merges = new List<(int Rank, string Merge)>();
        foreach (var (rank, bytes) in ranks)
        {
            if (bytes.Length < 2) continue;
            var parts = bytes.Select(b => new[] { b }).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (var i = 0; i + 1 < parts.Count; i++)
                    if (rankOf.TryGetValue(Convert.ToHexString([.. parts[i], .. parts[i + 1]]), out var r) && r < rank && r < bestRank)
                        (best, bestRank) = (i, r);
                if (best < 0) break;
                parts[best] = [.. parts[best], .. parts[best + 1]];
                parts.RemoveAt(best + 1);
            }
            if (parts.Count == 2)
                merges.Add((rank, ByteLevelAlphabet.ToTokenString(parts[0]) + " " + ByteLevelAlphabet.ToTokenString(parts[1])));
        }
        return merges.OrderBy(x => x.Rank).Select(x => x.Merge).ToList();
    }

    /// <summary>The llama.cpp pre-tokenizer whose regex is the one tokenizer.json splits with.</summary>
    static string PreTokenizerName(string path, JsonElement node)
    {
        var splits = new List<string>();
        var byteLevelRegex = false;
        void Collect(JsonElement n)
        {
            if (n.ValueKind != JsonValueKind.Object) return;
            var type = n.TryGetProperty("type", out var t) ? t.GetString() : null;
            switch (type)
            {
                case "Sequence":
                    foreach (var child in n.GetProperty("pretokenizers").EnumerateArray()) Collect(child);
                    break;
                case "Split":
                    var pattern = n.GetProperty("pattern");
                    splits.Add(pattern.TryGetProperty("Regex", out var r) ? r.GetString()! : "literal:" + pattern.GetProperty("String").GetString());
                    break;
                case "ByteLevel":
                    byteLevelRegex |= !n.TryGetProperty("use_regex", out var u) || u.ValueKind != JsonValueKind.False;
                    break;
                default:
                    splits.Add($"pre-tokenizer {type}");
                    break;
            }
        }
        Collect(node);
        return (splits, byteLevelRegex) switch
        {
            ([], true) => "gpt2",
            ([Qwen2Pattern], false) => "qwen2",
            ([Llama3Pattern], false) => "llama-bpe",
            _ => throw new NotSupportedException(
                $"'{path}': no llama.cpp pre-tokenizer is known to split like this one ({string.Join("; ", splits.DefaultIfEmpty("no regex"))}" +
                $"{(byteLevelRegex ? "; ByteLevel regex" : "")}); exported are GPT-2, Qwen2 and LLaMA-3 style byte-level BPE."),
        };
    }

    /// <summary>Pads the vocabulary with unused tokens up to the model's embedding rows.</summary>
    public GgufVocabulary PadTo(int size)
    {
        if (size < Tokens.Count)
            throw new NotSupportedException($"The tokenizer has {Tokens.Count} tokens but the model only {size} embedding rows; llama.cpp needs one row per token.");
        if (size == Tokens.Count) return this;
        var extra = Enumerable.Range(Tokens.Count, size - Tokens.Count).ToList();
        return new GgufVocabulary(Model, [.. Tokens, .. extra.Select(i => $"[PAD{i}]")], [.. TokenTypes, .. extra.Select(_ => Unused)])
        {
            PreTokenizer = PreTokenizer,
            Scores = Scores is null ? null : [.. Scores, .. extra.Select(_ => 0f)],
            Merges = Merges,
            BosId = BosId,
            EosId = EosId,
            UnknownId = UnknownId,
            PaddingId = PaddingId,
            AddBos = AddBos,
            AddSpacePrefix = AddSpacePrefix,
        };
    }

    /// <summary>
    /// Writes the <c>tokenizer.ggml.*</c> keys. <paramref name="eosOverride"/>: the model's own stop ids (config.json),
    /// which the engine prefers to the tokenizer's; a second one becomes llama.cpp's end-of-turn token.
    /// </summary>
    public void WriteTo(GgufWriter writer, IReadOnlyList<int>? eosOverride = null)
    {
        writer.Add("tokenizer.ggml.model", Model);
        if (PreTokenizer is not null) writer.Add("tokenizer.ggml.pre", PreTokenizer);
        writer.Add("tokenizer.ggml.tokens", Tokens);
        if (Scores is not null) writer.Add("tokenizer.ggml.scores", Scores);
        writer.Add("tokenizer.ggml.token_type", TokenTypes);
        if (Merges is not null) writer.Add("tokenizer.ggml.merges", Merges);
        if (BosId is { } bos) writer.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        var eosId = eosOverride is { Count: > 0 } ? eosOverride[0] : EosId;
        if (eosId is { } eos) writer.Add("tokenizer.ggml.eos_token_id", (uint)eos);
        if (eosOverride is { Count: > 1 }) writer.Add("tokenizer.ggml.eot_token_id", (uint)eosOverride[1]);
        if (UnknownId is { } unk) writer.Add("tokenizer.ggml.unknown_token_id", (uint)unk);
        if (PaddingId is { } pad) writer.Add("tokenizer.ggml.padding_token_id", (uint)pad);
        writer.Add("tokenizer.ggml.add_bos_token", AddBos);
        writer.Add("tokenizer.ggml.add_eos_token", false);
        if (AddSpacePrefix is { } space) writer.Add("tokenizer.ggml.add_space_prefix", space);
    }
}
