using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Cllm.Text;

/// <summary>
/// The tokenizer of a model folder: a thin wrapper over a Microsoft.ML.Tokenizers <see cref="Tokenizer"/>
/// that adds what the runtime needs and the library leaves to the caller: picking the right file in a
/// Hugging Face folder, BOS/EOS from the JSON configs, special tokens typed in text, and streaming.
/// </summary>
public sealed class TextTokenizer
{
    public const string SentencePieceKind = "sentencepiece";
    public const string BpeKind = "bpe";
    public const string TiktokenKind = "tiktoken";

    private readonly Dictionary<int, string> _idToToken;
    private readonly Dictionary<string, int> _tokenToId;

    // For bpe/tiktoken: ids that Decode(skipSpecial: true) drops. SentencePiece uses the library's own
    // notion (BOS/EOS/UNK and the special tokens given to it) because its leading-space rule depends on it.
    private readonly HashSet<int> _skippable;

    private TextTokenizer(Tokenizer inner, string kind, Dictionary<int, string> idToToken, int? bosId, IReadOnlyList<int> eosIds, bool addBos, HashSet<int> skippable,
        HashSet<int>? controlIds = null)
    {
        Inner = inner;
        Kind = kind;
        _idToToken = idToToken;
        _tokenToId = new Dictionary<string, int>(idToToken.Count, StringComparer.Ordinal);
        foreach (var (id, token) in idToToken.OrderBy(kv => kv.Key))
        {
            _tokenToId.TryAdd(token, id);
        }

        _skippable = skippable;
        ControlIds = controlIds ?? skippable;
        BosId = bosId;
        EosIds = eosIds;
        AddBos = addBos && bosId is not null;
        VocabularySize = idToToken.Count == 0 ? 0 : idToToken.Keys.Max() + 1;
        StreamGuard = kind == SentencePieceKind ? FindStreamGuard() : null;
    }

    /// <summary>The underlying Microsoft.ML.Tokenizers tokenizer.</summary>
    public Tokenizer Inner { get; }

    /// <summary>"sentencepiece", "bpe" (Hugging Face byte-level BPE) or "tiktoken".</summary>
    public string Kind { get; }

    /// <summary>One more than the largest token id, special tokens included (the embedding rows needed).</summary>
    public int VocabularySize { get; }

    public int? BosId { get; }

    /// <summary>Ids that end generation: the configured eos_token first, then generation_config's extra ones.</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>Whether <see cref="Encode"/> puts BOS in front (when asked for special tokens).</summary>
    public bool AddBos { get; }

    /// <summary>Ids that are markers, not text (BOS, EOS, role markers: special added tokens); added tokens marked
    /// non-special, such as a tool-call tag, are text. Constrained decoding never writes these inside the text.</summary>
    internal IReadOnlySet<int> ControlIds { get; }

    /// <summary>For SentencePiece streaming: a plain letter piece and a piece starting with "▁".</summary>
    internal (int GuardId, int ProbeId)? StreamGuard { get; }

    /// <summary>
    /// Loads the tokenizer of a model folder. Picks tokenizer.json when it is byte-level BPE (Qwen2,
    /// DeepSeek-Coder, LLaMA-3 HF), else tokenizer.model or original/tokenizer.model, which may be a
    /// SentencePiece model (LLaMA-2, Mistral, Vicuna) or a tiktoken file (LLaMA-3's original/), told
    /// apart by content. BOS/EOS come from tokenizer_config.json, special_tokens_map.json and
    /// generation_config.json when present.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder or every tokenizer file in it is missing.</exception>
    /// <exception cref="InvalidDataException">A tokenizer file is corrupt or uses an unsupported feature.</exception>
    public static TextTokenizer Load(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        string dir = Path.GetFullPath(modelDirectory);
        if (!Directory.Exists(dir))
        {
            throw new FileNotFoundException($"Model folder '{dir}' does not exist; expected tokenizer.json or tokenizer.model in it.", dir);
        }

        var config = TokenizerConfig.Read(dir);
        string jsonPath = Path.Combine(dir, "tokenizer.json");
        string? jsonRejected = null;
        if (File.Exists(jsonPath))
        {
            var hf = HfTokenizerJson.TryRead(jsonPath, out jsonRejected);
            if (hf is not null)
            {
                return FromHfByteLevelBpe(hf, config);
            }
        }

        // LLaMA-2/Mistral HF folders ship a SentencePiece-style tokenizer.json next to tokenizer.model:
        // the .model file is the one Microsoft.ML.Tokenizers reads exactly.
        foreach (string path in new[] { Path.Combine(dir, "tokenizer.model"), Path.Combine(dir, "original", "tokenizer.model") })
        {
            if (File.Exists(path))
            {
                return FromModelFile(path, config);
            }
        }

        if (jsonRejected is not null)
        {
            throw new InvalidDataException($"'{jsonPath}': {jsonRejected}, and there is no tokenizer.model next to it to use instead.");
        }

        throw new FileNotFoundException(
            $"No tokenizer in '{dir}': expected tokenizer.json, tokenizer.model or original/tokenizer.model.", Path.Combine(dir, "tokenizer.model"));
    }

    /// <summary>
    /// Text to ids. Special tokens written in the text (e.g. <c>&lt;|im_start|&gt;</c>, <c>&lt;/s&gt;</c>)
    /// become their single id either way; <paramref name="addSpecial"/> only controls the BOS in front.
    /// </summary>
    public int[] Encode(string text, bool addSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        IReadOnlyList<int> ids = Inner is SentencePieceTokenizer sp
            ? sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false)
            : Inner.EncodeToIds(text);
        bool bos = addSpecial && AddBos;
        var result = new int[ids.Count + (bos ? 1 : 0)];
        if (bos)
        {
            result[0] = BosId!.Value;
        }

        for (int i = 0; i < ids.Count; i++)
        {
            result[i + (bos ? 1 : 0)] = ids[i];
        }

        return result;
    }

    /// <summary>Ids to text; with <paramref name="skipSpecial"/> BOS/EOS and other special tokens are left out.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Inner switch
        {
            SentencePieceTokenizer sp => sp.Decode(ids, considerSpecialTokens: !skipSpecial),
            BpeTokenizer bpe => bpe.Decode(skipSpecial ? ids.Where(id => !_skippable.Contains(id)) : ids, considerSpecialTokens: true),
            _ => Inner.Decode(skipSpecial ? ids.Where(id => !_skippable.Contains(id)) : ids),
        };
    }

    /// <summary>
    /// The vocabulary entry of an id: a SentencePiece piece ("▁the", "&lt;0xE2&gt;"), a byte-level BPE
    /// symbol string ("Ġthe"; tiktoken bytes are shown the same way) or a special token; null if unknown.
    /// </summary>
    public string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

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

        return TiktokenFile.LooksLikeTiktoken(content) ? FromTiktoken(path, content, config) : FromSentencePiece(path, content, config);
    }

    private static TextTokenizer FromSentencePiece(string path, byte[] content, TokenizerConfig config)
    {
        // First load without special tokens to learn the model's own BOS/EOS/UNK pieces.
        SentencePieceTokenizer plain = CreateLlama(path, content, addBos: true, specials: null);
        if (plain.Vocabulary.Count == 0)
        {
            throw new InvalidDataException($"'{path}' has no pieces; it is not a usable SentencePiece model.");
        }

        // LlamaTokenizer only splits out special tokens typed in text when it is given them; it also
        // requires one text per id.
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        var usedIds = new HashSet<int>();
        void AddSpecial(string text, int id)
        {
            if (text.Length > 0 && !specials.ContainsKey(text) && usedIds.Add(id))
            {
                specials[text] = id;
            }
        }

        AddSpecial(plain.UnknownToken, plain.UnknownId);
        AddSpecial(plain.BeginningOfSentenceToken, plain.BeginningOfSentenceId);
        AddSpecial(plain.EndOfSentenceToken, plain.EndOfSentenceId);
        foreach (var a in config.AddedTokens)
        {
            AddSpecial(a.Content, a.Id);
        }

        var idToToken = new Dictionary<int, string>();
        foreach (var (piece, id) in plain.Vocabulary)
        {
            idToToken.TryAdd(id, piece);
        }

        foreach (var (text, id) in specials)
        {
            idToToken.TryAdd(id, text);
        }

        int? Lookup(string? token) => token is null ? null : specials.TryGetValue(token, out int s) ? s : plain.Vocabulary.TryGetValue(token, out int v) ? v : null;

        int bos = Lookup(config.BosToken) ?? config.GenerationBosId ?? plain.BeginningOfSentenceId;
        var eos = EosList(Lookup(config.EosToken) ?? plain.EndOfSentenceId, config.GenerationEosIds);
        // LLaMA-style models are trained with BOS; tokenizer_config.json says otherwise when they are not.
        bool addBos = config.AddBosToken ?? true;

        var sp = CreateLlama(path, content, addBos, specials);
        var control = new HashSet<int> { plain.UnknownId, plain.BeginningOfSentenceId, plain.EndOfSentenceId, bos };
        control.UnionWith(eos);
        control.UnionWith(config.AddedTokens.Where(a => a.Special).Select(a => a.Id));
        return new TextTokenizer(sp, SentencePieceKind, idToToken, bos, eos, addBos, [], control);
    }

    private static SentencePieceTokenizer CreateLlama(string path, byte[] content, bool addBos, Dictionary<string, int>? specials)
    {
        try
        {
            return LlamaTokenizer.Create(new MemoryStream(content, writable: false), addBos, addEndOfSentence: false, specials);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Protobuf parse errors come as Google.Protobuf types, unsupported settings as
            // ArgumentException/NotSupportedException; the caller only needs to know which file and why.
            throw new InvalidDataException($"'{path}' is not a SentencePiece model that Microsoft.ML.Tokenizers can load: {ex.Message}", ex);
        }
    }

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

        // Special tokens typed in text are only recognised when the pre-tokenizer knows them too.
        var regex = new Regex(TiktokenFile.Llama3Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        TiktokenTokenizer tik;
        try
        {
            tik = TiktokenTokenizer.Create(new MemoryStream(content, writable: false), new RegexPreTokenizer(regex, specials), normalizer: null, specials);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
        {
            throw new InvalidDataException($"'{path}' is not a tiktoken file that Microsoft.ML.Tokenizers can load: {ex.Message}", ex);
        }

        var idToToken = new Dictionary<int, string>(ranks.Count + specials.Count);
        foreach (var (rank, bytes) in ranks)
        {
            idToToken[rank] = ByteLevelAlphabet.ToTokenString(bytes);
        }

        foreach (var (text, id) in specials)
        {
            idToToken[id] = text;
        }

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
        bool addBos = config.AddBosToken ?? true;
        return new TextTokenizer(tik, TiktokenKind, idToToken, bos, eos, addBos, [.. specials.Values]);
    }

    private static TextTokenizer FromHfByteLevelBpe(HfByteLevelBpe hf, TokenizerConfig config)
    {
        var idToToken = new Dictionary<int, string>(hf.Vocabulary.Count + hf.AddedTokens.Count);
        foreach (var (token, id) in hf.Vocabulary)
        {
            idToToken.TryAdd(id, token);
        }

        foreach (var a in hf.AddedTokens)
        {
            idToToken[a.Id] = a.Content;
        }

        int? Lookup(string? token)
        {
            if (token is null)
            {
                return null;
            }

            var added = hf.AddedTokens.FirstOrDefault(a => a.Content == token);
            return added is not null ? added.Id : hf.Vocabulary.TryGetValue(token, out int id) ? id : null;
        }

        // Qwen2 has no BOS at all; LLaMA-3 HF and DeepSeek-Coder add one, said either by add_bos_token
        // or by a TemplateProcessing post-processor that starts with it.
        int? bos = Lookup(config.BosToken ?? hf.TemplateBosToken) ?? config.GenerationBosId;
        bool addBos = config.AddBosToken ?? hf.TemplateBosToken is not null;
        var eos = EosList(Lookup(config.EosToken), config.GenerationEosIds);

        var skippable = hf.AddedTokens.Where(a => a.Special).Select(a => a.Id).ToHashSet();
        if (bos is int b)
        {
            skippable.Add(b);
        }

        skippable.UnionWith(eos);
        return new TextTokenizer(hf.Tokenizer, BpeKind, idToToken, bos, eos, addBos, skippable);
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
            if (TokenToId(p) is int pid && Decode([gid, pid]).StartsWith(_idToToken[gid] + " ", StringComparison.Ordinal))
            {
                return (gid, pid);
            }
        }

        return null;
    }
}
