using Cllm.Checkpoints;

namespace Cllm.Text;

/// <summary>
/// The tokenizer of a model folder, giving the ids the model's reference tokenizer gives: Hugging Face
/// tokenizer.json (byte-level BPE such as Qwen, LLaMA-3, DeepSeek; SentencePiece-style BPE such as
/// LLaMA-2, Mistral, Gemma), a SentencePiece tokenizer.model, or a tiktoken file (LLaMA-3's original/),
/// all run by our own pipeline (<see cref="TokenizerPipeline"/>), plus BOS/EOS from the JSON configs,
/// special tokens typed in text, and streaming.
/// </summary>
public sealed class TextTokenizer
{
    public const string SentencePieceKind = "sentencepiece";
    public const string BpeKind = "bpe";
    public const string TiktokenKind = "tiktoken";

    // Tokenizer classes whose Hugging Face implementation rebuilds the post-processor from
    // add_bos_token/add_eos_token (LlamaTokenizerFast.update_post_processor and its kin).
    private static readonly HashSet<string> BosEosFromConfigClasses = new(StringComparer.Ordinal)
    {
        "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
        "GemmaTokenizer", "GemmaTokenizerFast",
    };

    private readonly TokenizerPipeline _pipeline;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly int[] _prefix;
    private readonly int[] _suffix;

    // Ids that Decode(skipSpecial: true) drops: special added tokens, BOS, EOS.
    private readonly HashSet<int> _skippable;

    private TextTokenizer(TokenizerPipeline pipeline, string kind, int? bosId, IReadOnlyList<int> eosIds, IReadOnlyList<int> prefix, IReadOnlyList<int> suffix)
    {
        _pipeline = pipeline;
        Kind = kind;
        _prefix = [.. prefix];
        _suffix = [.. suffix];
        _tokenToId = new Dictionary<string, int>(pipeline.Size, StringComparer.Ordinal);
        for (int id = 0; id < pipeline.Size; id++)
        {
            if (pipeline.IdToToken(id) is string token)
            {
                _tokenToId.TryAdd(token, id);
            }
        }

        _skippable = pipeline.AddedTokens.Where(a => a.Special).Select(a => a.Id).ToHashSet();
        if (bosId is int b)
        {
            _skippable.Add(b);
        }

        _skippable.UnionWith(eosIds);
        ControlIds = _skippable;
        BosId = bosId;
        EosIds = eosIds;
        AddBos = bosId is int bos && _prefix.Contains(bos);
        AddEos = _suffix.Length > 0;
        VocabularySize = pipeline.Size;
        // Ids from the JSON configs must name tokens that exist: an EOS that is not there would never stop
        // generation, a BOS that is not there would crash the first forward pass.
        if (bosId is int bid && pipeline.IdToToken(bid) is null)
        {
            throw new InvalidDataException($"BOS id {bid} (bos_token_id in generation_config.json, or bos_token in tokenizer_config.json) " +
                                           $"is not in the tokenizer's vocabulary (ids 0 to {VocabularySize - 1}); fix or remove it.");
        }

        foreach (int eid in eosIds.Where(e => pipeline.IdToToken(e) is null))
        {
            throw new InvalidDataException($"EOS id {eid} (eos_token_id in generation_config.json, or eos_token in tokenizer_config.json) " +
                                           $"is not in the tokenizer's vocabulary (ids 0 to {VocabularySize - 1}); fix or remove it.");
        }
        StreamGuard = kind == SentencePieceKind ? FindStreamGuard() : null;
    }

    /// <summary>"sentencepiece" (SentencePiece or SentencePiece-style BPE), "bpe" (byte-level BPE) or "tiktoken".</summary>
    public string Kind { get; }

    /// <summary>One more than the largest token id, special tokens included (the embedding rows needed).</summary>
    public int VocabularySize { get; }

    public int? BosId { get; }

    /// <summary>Ids that end generation: the configured eos_token first, then generation_config's extra ones.</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>Whether <see cref="Encode"/> puts BOS in front (when asked for special tokens).</summary>
    public bool AddBos { get; }

    /// <summary>Whether <see cref="Encode"/> puts ids after the text (EOS; when asked for special tokens).</summary>
    public bool AddEos { get; }

    /// <summary>Ids that are markers, not text (BOS, EOS, special added tokens such as role markers); added tokens
    /// marked non-special, such as a tool-call tag, are text. Constrained decoding never writes these inside the text.</summary>
    internal IReadOnlySet<int> ControlIds { get; }

    /// <summary>For SentencePiece streaming: a plain letter piece and a piece starting with "▁".</summary>
    internal (int GuardId, int ProbeId)? StreamGuard { get; }

    /// <summary>
    /// Loads the tokenizer of a model folder: tokenizer.json when there is one (any BPE flavour), else
    /// tokenizer.model or original/tokenizer.model, which may be a SentencePiece model (LLaMA-2, Mistral)
    /// or a tiktoken file (LLaMA-3's original/), told apart by content. BOS/EOS come from
    /// tokenizer_config.json, special_tokens_map.json and generation_config.json when present.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder or every tokenizer file in it is missing.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is corrupt or uses an unsupported feature.</exception>
    public static TextTokenizer Load(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        string dir = Path.GetFullPath(modelDirectory);
        if (File.Exists(dir))
        {
            throw new FileNotFoundException($"'{dir}' is a file; give the model folder that holds it (tokenizer.json or tokenizer.model).", dir);
        }

        if (!Directory.Exists(dir))
        {
            throw new FileNotFoundException($"Model folder '{dir}' does not exist; expected tokenizer.json or tokenizer.model in it.", dir);
        }

        try
        {
            using var entries = Directory.EnumerateFileSystemEntries(dir).GetEnumerator();
            entries.MoveNext();
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            // Without this, an unreadable folder looks empty and the error would say "no tokenizer".
            throw new UnauthorizedAccessException($"Model folder '{dir}' cannot be read ({ex.Message}); check its permissions.", ex);
        }

        var config = TokenizerConfig.Read(dir);
        var tokenizer = LoadFiles(dir, config);
        // generation_config.json ids must exist even where tokenizer_config.json's tokens take precedence over them.
        var generationIds = config.GenerationEosIds.ToList();
        if (config.GenerationBosId is int generationBos)
        {
            generationIds.Add(generationBos);
        }

        foreach (int id in generationIds.Where(id => tokenizer.IdToToken(id) is null))
        {
            throw new InvalidDataException($"{Path.Combine(dir, "generation_config.json")}: token id {id} (bos_token_id / eos_token_id) " +
                                           $"is not in the tokenizer's vocabulary (ids 0 to {tokenizer.VocabularySize - 1}); fix or remove it.");
        }

        return tokenizer;
    }

    private static TextTokenizer LoadFiles(string dir, TokenizerConfig config)
    {
        string jsonPath = Path.Combine(dir, "tokenizer.json");
        var modelFiles = new[] { Path.Combine(dir, "tokenizer.model"), Path.Combine(dir, "original", "tokenizer.model") }.Where(File.Exists).ToList();
        if (File.Exists(jsonPath))
        {
            try
            {
                return FromHfJson(HfTokenizerJson.Read(jsonPath), config);
            }
            catch (InvalidDataException) when (modelFiles.Count > 0)
            {
                // A tokenizer.json we cannot run (e.g. a Unigram model) next to a tokenizer.model we can.
            }
        }

        if (modelFiles.Count > 0)
        {
            return FromModelFile(modelFiles[0], config);
        }

        throw new FileNotFoundException(
            $"No tokenizer in '{dir}': expected tokenizer.json, tokenizer.model or original/tokenizer.model.", Path.Combine(dir, "tokenizer.model"));
    }

    /// <summary>
    /// Text to ids. Special tokens written in the text (e.g. <c>&lt;|im_start|&gt;</c>, <c>&lt;/s&gt;</c>)
    /// become their single id either way; <paramref name="addSpecial"/> controls what the model's rule puts
    /// around the text (BOS in front, EOS after when the configuration asks for it).
    /// </summary>
    public int[] Encode(string text, bool addSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = _pipeline.EncodeText(text);
        if (!addSpecial || (_prefix.Length == 0 && _suffix.Length == 0))
        {
            return [.. ids];
        }

        return [.. _prefix, .. ids, .. _suffix];
    }

    /// <summary>
    /// Text to ids with special-token parsing off: a marker typed in the text (<c>&lt;|im_start|&gt;</c>) is encoded
    /// as the characters it is made of, never as the marker's id. For text from users, tools and documents, so it
    /// cannot open a turn of another role. <paramref name="startsText"/> says whether the text begins the whole
    /// input (SentencePiece then adds its leading space, as <see cref="Encode"/> does); a run that follows a
    /// special token gets exactly the ids <see cref="Encode"/> gives it there. No BOS is added.
    /// </summary>
    public int[] EncodeOrdinary(string text, bool startsText)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Length == 0 ? [] : [.. _pipeline.EncodeOrdinary(text, startsText)];
    }

    /// <summary>
    /// The added tokens (chat markers and other control pieces) by their text: <see cref="Encode"/> turns them into
    /// their ids wherever they occur (as <c>&lt;|im_start|&gt;</c>); <see cref="EncodeOrdinary"/> spells them out instead.
    /// </summary>
    public IReadOnlyDictionary<string, int> SpecialTokens =>
        _specialTokens ??= _pipeline.AddedTokens.GroupBy(a => a.Content, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().Id, StringComparer.Ordinal);

    private IReadOnlyDictionary<string, int>? _specialTokens;

    /// <summary>Ids to text; with <paramref name="skipSpecial"/> BOS/EOS and other special tokens are left out.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _pipeline.Decode(ids, skipSpecial ? _skippable.Contains : null);
    }

    /// <summary>
    /// The vocabulary entry of an id: a SentencePiece piece ("▁the", "&lt;0xE2&gt;"), a byte-level BPE
    /// symbol string ("Ġthe"; tiktoken bytes are shown the same way) or a special token; null if unknown.
    /// </summary>
    public string? IdToToken(int id) => _pipeline.IdToToken(id);

    /// <summary>The id of a vocabulary entry in the form <see cref="IdToToken"/> returns; null if unknown.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokenToId.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>A detokenizer that turns ids into text as they are generated; see <see cref="StreamingDetokenizer"/>.</summary>
    public StreamingDetokenizer CreateStreamingDetokenizer(bool skipSpecial = true) => new(this, skipSpecial);

    private static TextTokenizer FromModelFile(string path, TokenizerConfig config)
    {
        byte[] content = File.ReadAllBytes(path);
        if (content.Length == 0)
        {
            throw new InvalidDataException($"'{path}' is empty; expected a SentencePiece model or a tiktoken file.");
        }

        return TiktokenFile.LooksLikeTiktoken(content) ? FromTiktoken(path, content, config) : FromSentencePiece(path, config);
    }

    /// <summary>
    /// A SentencePiece BPE model run as SentencePiece does (highest score merges first, leftmost on ties,
    /// byte fallback, "▁" for spaces, add_dummy_prefix), with special tokens split out of the text and
    /// Hugging Face's legacy rule for the "▁" after them.
    /// </summary>
    private static TextTokenizer FromSentencePiece(string path, TokenizerConfig config)
    {
        var sp = GgufSentencePiece.Read(path);
        if (sp.Pieces.Count == 0)
        {
            throw new InvalidDataException($"'{path}' has no pieces; it is not a usable SentencePiece model.");
        }

        if (sp.ModelType != GgufSentencePiece.Bpe)
        {
            throw new InvalidDataException(
                $"'{path}' is a SentencePiece model of type {sp.ModelType} (1 = unigram); only BPE (2) is supported. " +
                "Use a folder whose tokenizer.model is BPE (LLaMA-2, Mistral) or that has a BPE tokenizer.json.");
        }

        if (sp.NormalizerName is not ("" or "identity"))
        {
            throw new InvalidDataException(
                $"'{path}': normalization '{sp.NormalizerName}' is not supported (only identity); retrain with " +
                "--normalization_rule_name=identity or ship a tokenizer.json.");
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new List<AddedTokenSpec>();
        var mergeable = new List<(string Piece, float Score)>();
        for (int id = 0; id < sp.Pieces.Count; id++)
        {
            var (piece, score, type) = sp.Pieces[id];
            if (type == GgufSentencePiece.Control)
            {
                added.Add(new AddedTokenSpec(id, piece, Special: true, false, false, Normalized: false));
                continue;
            }

            vocab.TryAdd(piece, id);
            if (type == GgufSentencePiece.Normal)
            {
                mergeable.Add((piece, score));
            }
            else if (type == GgufSentencePiece.UserDefined)
            {
                // SentencePiece matches user-defined pieces in the text before anything else.
                added.Add(new AddedTokenSpec(id, piece, Special: false, false, false, Normalized: false));
            }
            else if (type == GgufSentencePiece.Unknown)
            {
                added.Add(new AddedTokenSpec(id, piece, Special: true, false, false, Normalized: false));
            }
        }

        foreach (var a in config.AddedTokens)
        {
            if (!added.Any(x => x.Id == a.Id))
            {
                added.Add(new AddedTokenSpec(a.Id, a.Content, a.Special, false, false, Normalized: false));
            }
        }

        // Higher score merges first; equal scores share a rank, so the leftmost pair wins between them.
        var order = mergeable.OrderByDescending(m => m.Score).ToList();
        var ranked = new List<(string, int)>(order.Count);
        for (int i = 0, rank = 0; i < order.Count; i++)
        {
            if (i > 0 && order[i].Score != order[i - 1].Score)
            {
                rank++;
            }

            ranked.Add((order[i].Piece, rank));
        }

        int? unk = sp.UnknownId >= 0 && sp.UnknownId < sp.Pieces.Count ? sp.UnknownId : null;
        var model = BpeModel.FromPieceRanks(vocab, ranked, unk, sp.ByteFallback, fuseUnknown: true, ignoreMerges: false);

        // HF's legacy rule (default true): each text section after a special token starts with the dummy
        // "▁" again; legacy=false puts it only in front of the first section.
        bool legacy = config.Legacy ?? true;
        bool dummyPrefix = sp.AddDummyPrefix;
        bool removeExtra = sp.RemoveExtraWhitespaces;
        string Normalize(string text)
        {
            if (removeExtra)
            {
                text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }

            text = text.Replace(' ', '\u2581');
            return dummyPrefix && legacy && text.Length > 0 ? "\u2581" + text : text;
        }

        var preTokenizer = new List<PreTokenizeStep>();
        if (dummyPrefix && !legacy)
        {
            // SentencePiece's dummy prefix goes in front even when the text starts with a space.
            preTokenizer.Add((piece, section, output) => output.Add(section == 0 ? "\u2581" + piece : piece));
        }

        var controls = added.Select(a => a.Content).ToHashSet(StringComparer.Ordinal);
        var decoder = new List<DecodeStep>();
        if (dummyPrefix)
        {
            // As SentencePiece decodes: the dummy prefix comes off the first ordinary piece, whatever
            // special tokens come before it.
            decoder.Add(tokens =>
            {
                int first = tokens.FindIndex(t => !controls.Contains(t));
                if (first >= 0 && tokens[first].StartsWith('\u2581'))
                {
                    tokens[first] = tokens[first][1..];
                }

                return tokens;
            });
        }

        decoder.Add(tokens => tokens.Select(t => controls.Contains(t) ? t : t.Replace('\u2581', ' ')).ToList());
        decoder.Add(HfTokenizerJson.ByteFallbackDecode);
        decoder.Add(tokens => [string.Concat(tokens)]);

        var pipeline = new TokenizerPipeline(model, added, Normalize, preTokenizer, null, null, decoder);
        int? Lookup(string? token) => token is null ? null : added.FirstOrDefault(a => a.Content == token)?.Id ?? (vocab.TryGetValue(token, out int v) ? v : null);

        int? bos = Lookup(config.BosToken) ?? config.GenerationBosId ?? (sp.BosId >= 0 ? sp.BosId : null);
        int? eosPrimary = Lookup(config.EosToken) ?? (sp.EosId >= 0 ? sp.EosId : null);
        var eos = EosList(eosPrimary, config.GenerationEosIds);
        // LLaMA-style models are trained with BOS; tokenizer_config.json says otherwise when they are not.
        var prefix = (config.AddBosToken ?? true) && bos is int b ? new[] { b } : [];
        var suffix = (config.AddEosToken ?? false) && eosPrimary is int e ? new[] { e } : [];
        return new TextTokenizer(pipeline, SentencePieceKind, bos, eos, prefix, suffix);
    }

    /// <summary>
    /// A tiktoken file run as tiktoken does: a piece that is itself a token stays whole, else the pair
    /// whose concatenation has the lowest rank merges first; LLaMA-3's split pattern and special tokens.
    /// </summary>
    private static TextTokenizer FromTiktoken(string path, byte[] content, TokenizerConfig config)
    {
        var ranks = TiktokenFile.ReadRanks(path, content);
        int baseCount = ranks.Keys.Max() + 1;

        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        if (config.AddedTokens.Count > 0)
        {
            foreach (var a in config.AddedTokens)
            {
                specials.TryAdd(a.Content, a.Id);
            }
        }
        else
        {
            for (int i = 0; i < TiktokenFile.Llama3SpecialTokens.Count; i++)
            {
                specials[TiktokenFile.Llama3SpecialTokens[i]] = baseCount + i;
            }
        }

        var vocab = new Dictionary<string, int>(ranks.Count, StringComparer.Ordinal);
        foreach (var (rank, bytes) in ranks)
        {
            vocab.TryAdd(ByteLevelAlphabet.ToTokenString(bytes), rank);
        }

        var model = BpeModel.FromPieceRanks(vocab, vocab.Select(kv => (kv.Key, kv.Value)), null, false, false, ignoreMerges: true);
        var split = new CodePointRegex(new System.Text.RegularExpressions.Regex(
            TiktokenFile.Llama3Pattern, System.Text.RegularExpressions.RegexOptions.CultureInvariant));
        var preTokenizer = new List<PreTokenizeStep>
        {
            (piece, _, output) =>
            {
                foreach (var (index, length) in split.Matches(piece))
                {
                    output.Add(ByteLevelAlphabet.ToTokenString(System.Text.Encoding.UTF8.GetBytes(piece.Substring(index, length))));
                }
            },
        };
        var added = specials.Select(kv => new AddedTokenSpec(kv.Value, kv.Key, Special: true, false, false, Normalized: false)).ToList();
        var contents = specials.Keys.ToHashSet(StringComparer.Ordinal);
        var decoder = new List<DecodeStep> { tokens => HfTokenizerJson.ByteLevelDecode(tokens, contents) };
        var pipeline = new TokenizerPipeline(model, added, null, preTokenizer, null, null, decoder);

        int? Lookup(string? token) => token is not null && specials.TryGetValue(token, out int id) ? id : null;

        int? bos = Lookup(config.BosToken) ?? config.GenerationBosId ?? Lookup("<|begin_of_text|>");
        var eosIds = config.GenerationEosIds.ToList();
        if (eosIds.Count == 0 && Lookup("<|eot_id|>") is int eot)
        {
            // Without a generation_config.json, also stop at the end of a chat turn as Meta's instruct
            // models do; base models never emit it.
            eosIds.Add(eot);
        }

        var eos = EosList(Lookup(config.EosToken) ?? Lookup("<|end_of_text|>"), eosIds);
        // LLaMA-3 always starts with <|begin_of_text|>.
        var prefix = (config.AddBosToken ?? true) && bos is int b ? new[] { b } : [];
        return new TextTokenizer(pipeline, TiktokenKind, bos, eos, prefix, []);
    }

    /// <summary>
    /// A tokenizer.json folder. BOS/EOS: the post-processor's template, except for tokenizer classes whose
    /// Hugging Face implementation rebuilds it from add_bos_token/add_eos_token (LLaMA, Gemma).
    /// </summary>
    private static TextTokenizer FromHfJson(HfTokenizerFile hf, TokenizerConfig config)
    {
        var pipeline = hf.Pipeline;
        int? Lookup(string? token)
        {
            if (token is null)
            {
                return null;
            }

            var added = pipeline.AddedTokens.FirstOrDefault(a => a.Content == token);
            return added is not null ? added.Id : pipeline.Model.Vocabulary.TryGetValue(token, out int id) ? id : null;
        }

        int? bos = Lookup(config.BosToken) ?? (pipeline.Prefix.Count == 1 ? pipeline.Prefix[0] : (int?)null) ?? config.GenerationBosId;
        int? eosPrimary = Lookup(config.EosToken);
        var eos = EosList(eosPrimary, config.GenerationEosIds);
        IReadOnlyList<int> prefix = pipeline.Prefix, suffix = pipeline.Suffix;
        if (config.TokenizerClass is string cls && BosEosFromConfigClasses.Contains(cls))
        {
            prefix = (config.AddBosToken ?? true) && bos is int b ? [b] : [];
            suffix = (config.AddEosToken ?? false) && eosPrimary is int e ? [e] : [];
        }

        return new TextTokenizer(pipeline, hf.ByteLevel ? BpeKind : SentencePieceKind, bos, eos, prefix, suffix);
    }

    private static List<int> EosList(int? primary, IEnumerable<int> more)
    {
        var list = new List<int>();
        if (primary is int p)
        {
            list.Add(p);
        }

        foreach (int id in more)
        {
            if (!list.Contains(id))
            {
                list.Add(id);
            }
        }

        return list;
    }

    /// <summary>
    /// SentencePiece decoding drops the leading "▁" of the first ordinary piece of a sequence, so a
    /// window of ids decoded on its own would lose a space the full decode keeps. A plain letter piece
    /// put in front (the guard) makes any window decode as mid-sequence text; the probe ("▁"-piece)
    /// tells when a stream has got past that first piece.
    /// </summary>
    private (int GuardId, int ProbeId)? FindStreamGuard()
    {
        int? guard = null;
        foreach (char c in "aeionstrlAEIOST")
        {
            string s = c.ToString();
            if (TokenToId(s) is int g && Decode([g]) == s && Decode([g], skipSpecial: true) == s && Decode([g, g]) == s + s)
            {
                guard = g;
                break;
            }
        }

        if (guard is not int gid)
        {
            return null;
        }

        foreach (string p in new[] { "\u2581", "\u2581a", "\u2581t", "\u2581the" })
        {
            if (TokenToId(p) is int pid && Decode([gid, pid]).StartsWith(IdToToken(gid) + " ", StringComparison.Ordinal))
            {
                return (gid, pid);
            }
        }

        return null;
    }
}
