using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cllm.Model;

/// <summary>How RoPE frequencies are stretched for contexts longer than the model was trained on.</summary>
/// <param name="Type">"linear", "dynamic", "llama3" or "longrope" (Phi-3; older configs spell it "su").</param>
/// <param name="Factor">The stretch factor (longrope: max_position_embeddings / original_max_position_embeddings).</param>
/// <param name="LowFreqFactor">llama3 only.</param>
/// <param name="HighFreqFactor">llama3 only.</param>
/// <param name="OriginalMaxPositions">llama3 and longrope (required) and dynamic (defaults to max_position_embeddings).</param>
/// <param name="ShortFactor">longrope only: per-frequency divisors (head_dim / 2 of them) for contexts within the original length.</param>
/// <param name="LongFactor">longrope only: the divisors for contexts past the original length.</param>
/// <param name="AttentionFactor">longrope only: cos and sin are multiplied by it (resolved from the factor when the config gives none).</param>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4, int? OriginalMaxPositions = null,
    IReadOnlyList<double>? ShortFactor = null, IReadOnlyList<double>? LongFactor = null, double AttentionFactor = 1)
{
    // Lists compare by their values, so a config read back from its own config.json equals the original.
    public bool Equals(RopeScaling? other) =>
        other is not null && Type == other.Type && Factor == other.Factor && LowFreqFactor == other.LowFreqFactor
        && HighFreqFactor == other.HighFreqFactor && OriginalMaxPositions == other.OriginalMaxPositions
        && Same(ShortFactor, other.ShortFactor) && Same(LongFactor, other.LongFactor) && AttentionFactor == other.AttentionFactor;

    public override int GetHashCode() => HashCode.Combine(Type, Factor, OriginalMaxPositions, ShortFactor?.Count, AttentionFactor);

    static bool Same(IReadOnlyList<double>? a, IReadOnlyList<double>? b) => a is null ? b is null : b is not null && a.SequenceEqual(b);
}

/// <summary>
/// The hyper-parameters of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, Phi-3, DeepSeek-Coder) or Gemma 2 / 3,
/// read from and written to a Hugging Face <c>config.json</c>. Presets name the project's own random-initialised shapes.
/// </summary>
public sealed record ModelConfig
{
    public string Architecture { get; init; } = "LlamaForCausalLM";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int NumKvHeads { get; init; }
    public int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-5;
    public double RopeTheta { get; init; } = 10000;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q/k/v projections (Qwen2).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Sliding-window attention: a query at position p sees keys at positions in (p - window, p].</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Gemma: every this-many-th layer (1-based) attends globally, the others through the sliding window;
    /// null: every layer uses the window.</summary>
    public int? SlidingWindowPattern { get; init; }
    /// <summary>Gemma: attention scores are scaled by 1/sqrt(query_pre_attn_scalar) instead of 1/sqrt(head_dim).</summary>
    public double? QueryPreAttnScalar { get; init; }
    /// <summary>Gemma 2: attention scores are soft-capped to cap * tanh(score / cap).</summary>
    public double? AttnLogitSoftcap { get; init; }
    /// <summary>Gemma 2: output logits are soft-capped to cap * tanh(logit / cap).</summary>
    public double? FinalLogitSoftcap { get; init; }
    /// <summary>Gemma 3: the RoPE base of the sliding-window layers (which take no rope_scaling).</summary>
    public double? RopeLocalTheta { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Whether layer <paramref name="layer"/> attends through the sliding window.</summary>
    public bool IsSlidingLayer(int layer) => SlidingWindow is not null && (SlidingWindowPattern is not { } p || (layer + 1) % p != 0);

    /// <summary>Gemma's block: RMSNorm weights applied as (1 + w), embeddings scaled by sqrt(hidden), GeGLU (tanh GELU),
    /// norms before and after both attention and MLP.</summary>
    public bool IsGemma => Architecture is "Gemma2ForCausalLM" or "Gemma3ForCausalLM";

    /// <summary>An RMSNorm over head_dim on every query and key head, after projection and before RoPE (Qwen3, Gemma 3;
    /// Gemma's scales by 1 + w as all its norms do).</summary>
    public bool QkNorm => Architecture is "Qwen3ForCausalLM" or "Gemma3ForCausalLM";

    /// <summary>Phi-3: the checkpoint stores q/k/v as one qkv_proj and gate/up as one gate_up_proj (as the model holds them).</summary>
    public bool FusedCheckpointTensors => Architecture == "Phi3ForCausalLM";

    public int QkvSize => (NumHeads + 2 * NumKvHeads) * HeadDim;

    public long ParameterCount
    {
        get
        {
            long d = HiddenSize, layer = d * QkvSize + (AttentionBias ? QkvSize : 0) + NumHeads * HeadDim * d
                                         + 3 * d * IntermediateSize + (IsGemma ? 4 : 2) * d + (QkNorm ? 2 * HeadDim : 0);
            return VocabSize * d * (TieWordEmbeddings ? 1 : 2) + NumLayers * layer + d;
        }
    }

    static readonly string[] SupportedArchitectures =
        ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM",
         "Gemma2ForCausalLM", "Gemma3ForCausalLM"];

    /// <summary>Shapes for tests and benchmarks, all with the built-in 4096-piece SentencePiece tokenizer.</summary>
    public static ModelConfig Preset(string name) => name switch
    {
        // tiny: unit tests, milliseconds per pass.
        "tiny" => Make(hidden: 64, layers: 2, heads: 4, kvHeads: 4, intermediate: 176),
        // tiny-gqa / tiny-qwen2: the other attention shapes, still test-sized.
        "tiny-gqa" => Make(hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 176) with { TieWordEmbeddings = true, RopeTheta = 500000 },
        "tiny-qwen2" => Make(hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 176) with
        {
            Architecture = "Qwen2ForCausalLM", AttentionBias = true, RopeTheta = 1000000, RmsNormEps = 1e-6,
        },
        // mini: about 3M parameters (d192, 6 layers): the size of the CLLM default model.
        "mini" => Make(hidden: 192, layers: 6, heads: 6, kvHeads: 6, intermediate: 512),
        // cllm-tiny: the default model's shape (about 2.9M parameters with its 1k vocabulary, tied embeddings).
        "cllm-tiny" => Make(hidden: 192, layers: 6, heads: 6, kvHeads: 6, intermediate: 512) with { TieWordEmbeddings = true, MaxPositions = 1024 },
        // small: about 60M parameters (d768, 8 layers), the benchmark shape.
        "small" => Make(hidden: 768, layers: 8, heads: 12, kvHeads: 4, intermediate: 2048),
        // Real models' shapes (random weights): Qwen2.5-0.5B and TinyLlama-1.1B, for benchmarks at the sizes users run.
        "qwen2.5-0.5b" => Make(hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864) with
        {
            Architecture = "Qwen2ForCausalLM", VocabSize = 151936, AttentionBias = true, TieWordEmbeddings = true,
            RopeTheta = 1000000, RmsNormEps = 1e-6, MaxPositions = 32768,
        },
        "tinyllama-1.1b" => Make(hidden: 2048, layers: 22, heads: 32, kvHeads: 4, intermediate: 5632) with
        {
            VocabSize = 32000, RmsNormEps = 1e-5, RopeTheta = 10000,
        },
        _ => throw new ArgumentException($"Unknown preset '{name}'. Known presets: {string.Join(", ", PresetNames)}.", nameof(name)),
    };

    public static IReadOnlyList<string> PresetNames { get; } =
        ["tiny", "tiny-gqa", "tiny-qwen2", "mini", "cllm-tiny", "small", "qwen2.5-0.5b", "tinyllama-1.1b"];

    static ModelConfig Make(int hidden, int layers, int heads, int kvHeads, int intermediate) => new()
    {
        VocabSize = 4096, HiddenSize = hidden, NumLayers = layers, NumHeads = heads, NumKvHeads = kvHeads,
        HeadDim = hidden / heads, IntermediateSize = intermediate, MaxPositions = 2048, BosTokenId = 1, EosTokenIds = [2],
    };

    /// <summary>Checks that the shapes are consistent; throws <see cref="InvalidDataException"/> naming the field.</summary>
    public ModelConfig Validate(string source = "config")
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: {what}");
        }
        Require(SupportedArchitectures.Contains(Architecture),
            $"architecture '{Architecture}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}.");
        Require(VocabSize > 0, "vocab_size must be positive.");
        Require(HiddenSize > 0, "hidden_size must be positive.");
        Require(IntermediateSize > 0, "intermediate_size must be positive.");
        Require(NumLayers > 0, "num_hidden_layers must be positive.");
        Require(NumHeads > 0, "num_attention_heads must be positive.");
        Require(NumKvHeads > 0 && NumHeads % NumKvHeads == 0,
            $"num_key_value_heads ({NumKvHeads}) must divide num_attention_heads ({NumHeads}).");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head_dim ({HeadDim}) must be positive and even (RoPE rotates pairs).");
        Require(Architecture != "Phi3ForCausalLM" || NumHeads * HeadDim == HiddenSize,
            $"Phi-3's heads ({NumHeads} x head_dim {HeadDim}) must span hidden_size ({HiddenSize}); remove head_dim.");
        Require(Architecture != "Phi3ForCausalLM" || !AttentionBias, "Phi-3 has no q/k/v biases; remove attention_bias.");
        Require(RmsNormEps > 0, "rms_norm_eps must be positive.");
        Require(RopeTheta > 0, "rope_theta must be positive.");
        Require(MaxPositions > 0, "max_position_embeddings must be positive.");
        Require(SlidingWindow is null or > 0, $"sliding_window ({SlidingWindow}) must be positive.");
        Require(SlidingWindowPattern is null or > 0, $"sliding_window_pattern ({SlidingWindowPattern}) must be positive.");
        Require(QueryPreAttnScalar is null or > 0, $"query_pre_attn_scalar ({QueryPreAttnScalar}) must be positive.");
        Require(AttnLogitSoftcap is null or > 0, $"attn_logit_softcapping ({AttnLogitSoftcap}) must be positive or null.");
        Require(FinalLogitSoftcap is null or > 0, $"final_logit_softcapping ({FinalLogitSoftcap}) must be positive or null.");
        Require(RopeLocalTheta is null or > 0, $"rope_local_base_freq ({RopeLocalTheta}) must be positive.");
        Require(BosTokenId is null || (BosTokenId >= 0 && BosTokenId < VocabSize),
            $"bos_token_id {BosTokenId} is outside the vocabulary (0 to {VocabSize - 1}); fix bos_token_id or vocab_size.");
        foreach (var eos in EosTokenIds)
            Require(eos >= 0 && eos < VocabSize, $"eos_token_id {eos} is outside the vocabulary (0 to {VocabSize - 1}); fix eos_token_id or vocab_size.");
        Require(ParameterCount <= 1_000_000_000_000L,
            $"these sizes describe {ParameterCount:N0} parameters; check vocab_size, hidden_size, intermediate_size and num_hidden_layers.");
        if (RopeScaling is { } s)
        {
            Require(s.Type is "linear" or "dynamic" or "llama3" or "longrope",
                $"rope_scaling type '{s.Type}' is not supported; supported: linear, dynamic, llama3, longrope.");
            Require(s.Factor >= 1 || s.Type == "longrope", $"rope_scaling factor ({s.Factor}) must be >= 1.");
            Require(s.Type != "llama3" || (s.OriginalMaxPositions > 0 && s.HighFreqFactor > s.LowFreqFactor),
                "llama3 rope_scaling needs original_max_position_embeddings and high_freq_factor > low_freq_factor.");
            if (s.Type == "longrope")
            {
                Require(s.OriginalMaxPositions > 0, "longrope rope_scaling needs original_max_position_embeddings.");
                foreach (var (name, list) in new[] { ("short_factor", s.ShortFactor), ("long_factor", s.LongFactor) })
                    Require(list is not null && list.Count == HeadDim / 2 && list.All(x => double.IsFinite(x) && x > 0),
                        $"rope_scaling.{name} must list {HeadDim / 2} positive numbers (head_dim / 2); it has {list?.Count ?? 0}.");
                Require(double.IsFinite(s.AttentionFactor) && s.AttentionFactor > 0,
                    $"rope_scaling.attention_factor ({s.AttentionFactor}) must be positive.");
            }
        }
        return this;
    }

    /// <summary>Reads a Hugging Face config.json.</summary>
    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model config not found: {path}", path);
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                   ?? throw new InvalidDataException($"{path}: config.json must hold a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
        return FromJson(json, path);
    }

    // Far beyond any real model, small enough that a typo cannot make the loader allocate terabytes.
    const int MaxDimension = 1 << 20, MaxVocab = 1 << 24, MaxLayers = 4096, MaxHeads = 4096, MaxPositionsLimit = 1 << 24;

    public static ModelConfig FromJson(JsonObject json, string source = "config.json")
    {
        var f = new ConfigFields(json, source);
        int Required(string key, long min, long max) => f.Int(key, min, max)
            ?? throw new InvalidDataException($"{source}: required field '{key}' is missing; add it to {Path.GetFileName(source)}.");

        string architecture;
        if (json["architectures"] is { } archNode)
        {
            if (archNode is not JsonArray { Count: > 0 } archs || archs[0]?.GetValueKind() != JsonValueKind.String)
                throw ConfigFields.Error(source, "architectures", ConfigFields.Show(archNode), "a list of class names such as [\"LlamaForCausalLM\"]");
            architecture = archs[0]!.GetValue<string>();
        }
        else
        {
            architecture = f.String("model_type") switch
            {
                "llama" => "LlamaForCausalLM",
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                "qwen3" => "Qwen3ForCausalLM",
                "phi3" => "Phi3ForCausalLM",
                "gemma2" => "Gemma2ForCausalLM",
                "gemma3_text" => "Gemma3ForCausalLM",
                null => throw new InvalidDataException($"{source}: neither 'architectures' nor 'model_type' is given; " +
                                                       "add \"architectures\": [\"LlamaForCausalLM\"] (or the model's own class)."),
                var other => other,
            };
        }

        var vocab = Required("vocab_size", 1, MaxVocab);
        var hidden = Required("hidden_size", 1, MaxDimension);
        var heads = Required("num_attention_heads", 1, MaxHeads);
        var isQwen2 = architecture == "Qwen2ForCausalLM";
        // Qwen2/Qwen3 configs carry a sliding_window that applies only with use_sliding_window.
        var windowNeedsFlag = isQwen2 || architecture == "Qwen3ForCausalLM";
        int? slidingWindow = null;
        if (json["sliding_window"] is not null && (!windowNeedsFlag || f.Bool("use_sliding_window") == true))
            slidingWindow = f.Int("sliding_window", 1, int.MaxValue);
        // Qwen2/Qwen3 slide only the layers from max_window_layers (default 28) on: every layer (0) or none is supported.
        var first = windowNeedsFlag ? f.Int("max_window_layers", 0, MaxLayers) ?? 28 : 0;
        if (slidingWindow is not null && first > 0)
        {
            var layerCount = f.Int("num_hidden_layers", 1, MaxLayers) ?? 0;
            if (first >= layerCount) slidingWindow = null;
            else
                throw ConfigFields.Error(source, "max_window_layers", $"{first}", $"0 (every layer slides) or at least num_hidden_layers " +
                    $"({layerCount}, no layer slides); a sliding window on layers {first} and up only is not supported");
        }
        // Phi-4-mini rotates only part of each head; that is not implemented.
        if (f.Double("partial_rotary_factor", 0, 1) is { } partial && partial != 1)
            throw ConfigFields.Error(source, "partial_rotary_factor", partial.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "1 (partial rotary embeddings are not supported)");

        if (architecture is "Gemma2ForCausalLM" or "Gemma3ForCausalLM") return ReadGemma(json, f, architecture, source);
        var maxPositions = f.Int("max_position_embeddings", 2, MaxPositionsLimit) ?? 2048;
        var headDim = f.Int("head_dim", 1, MaxDimension) ?? hidden / heads;
        return new ModelConfig
        {
            Architecture = architecture,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = Required("intermediate_size", 1, MaxDimension),
            NumLayers = Required("num_hidden_layers", 1, MaxLayers),
            NumHeads = heads,
            NumKvHeads = f.Int("num_key_value_heads", 1, MaxHeads) ?? heads,
            HeadDim = headDim,
            RmsNormEps = f.Double("rms_norm_eps", 0, 1) ?? 1e-6,
            RopeTheta = f.Double("rope_theta", 0, double.MaxValue) ?? 10000.0,
            RopeScaling = ReadRopeScaling(json["rope_scaling"], source, maxPositions, headDim,
                f.Int("original_max_position_embeddings", 1, MaxPositionsLimit)),
            MaxPositions = maxPositions,
            TieWordEmbeddings = f.Bool("tie_word_embeddings") ?? false,
            AttentionBias = isQwen2 || (f.Bool("attention_bias") ?? false),
            SlidingWindow = slidingWindow,
            BosTokenId = json["bos_token_id"] is { } bos ? f.ToInt(bos, "bos_token_id", 0, vocab - 1) : null,
            EosTokenIds = f.Ids("eos_token_id", vocab),
        }.Validate(source);
    }

    /// <summary>Gemma 2 and Gemma 3 text configs, with Hugging Face's defaults for the fields they leave out.</summary>
    static ModelConfig ReadGemma(JsonObject json, ConfigFields f, string architecture, string source)
    {
        var gemma3 = architecture == "Gemma3ForCausalLM";
        int Required(string key, long min, long max) => f.Int(key, min, max)
            ?? throw new InvalidDataException($"{source}: required field '{key}' is missing; add it to {Path.GetFileName(source)}.");
        // A soft-cap field that is present but null means no capping; an absent one takes the default.
        double? Softcap(string key, double? fallback) => json.ContainsKey(key) ? f.Double(key, 0, 1e9) : fallback;
        var activation = (json["hidden_activation"] is not null ? f.String("hidden_activation") : f.String("hidden_act")) ?? "gelu_pytorch_tanh";
        if (activation is not ("gelu_pytorch_tanh" or "gelu_tanh"))
            throw ConfigFields.Error(source, json["hidden_activation"] is not null ? "hidden_activation" : "hidden_act",
                ConfigFields.Show(JsonValue.Create(activation)), "\"gelu_pytorch_tanh\" (Gemma's GeGLU uses the tanh approximation of GELU)");
        var vocab = Required("vocab_size", 1, MaxVocab);
        var heads = Required("num_attention_heads", 1, MaxHeads);
        var layers = Required("num_hidden_layers", 1, MaxLayers);
        var maxPositions = f.Int("max_position_embeddings", 2, MaxPositionsLimit) ?? (gemma3 ? 131072 : 8192);
        var headDim = f.Int("head_dim", 1, MaxDimension) ?? 256;
        return new ModelConfig
        {
            Architecture = architecture,
            VocabSize = vocab,
            HiddenSize = Required("hidden_size", 1, MaxDimension),
            IntermediateSize = Required("intermediate_size", 1, MaxDimension),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = f.Int("num_key_value_heads", 1, MaxHeads) ?? heads,
            HeadDim = headDim,
            RmsNormEps = f.Double("rms_norm_eps", 0, 1) ?? 1e-6,
            RopeTheta = f.Double("rope_theta", 0, double.MaxValue) ?? (gemma3 ? 1_000_000.0 : 10000.0),
            RopeScaling = ReadRopeScaling(json["rope_scaling"], source, maxPositions, headDim,
                f.Int("original_max_position_embeddings", 1, MaxPositionsLimit)),
            RopeLocalTheta = gemma3 ? f.Double("rope_local_base_freq", 0, double.MaxValue) ?? 10000.0 : null,
            MaxPositions = maxPositions,
            TieWordEmbeddings = f.Bool("tie_word_embeddings") ?? true,
            AttentionBias = f.Bool("attention_bias") ?? false,
            SlidingWindow = f.Int("sliding_window", 1, int.MaxValue) ?? 4096,
            SlidingWindowPattern = ReadLayerPattern(json, f, layers, gemma3 ? 6 : 2, source),
            QueryPreAttnScalar = f.Double("query_pre_attn_scalar", 0, 1e9) ?? 256,
            AttnLogitSoftcap = Softcap("attn_logit_softcapping", gemma3 ? null : 50.0),
            FinalLogitSoftcap = Softcap("final_logit_softcapping", gemma3 ? null : 30.0),
            BosTokenId = json["bos_token_id"] is { } bos ? f.ToInt(bos, "bos_token_id", 0, vocab - 1) : null,
            EosTokenIds = f.Ids("eos_token_id", vocab),
        }.Validate(source);
    }

    /// <summary>Which layers are global: layer_types (a list of "sliding_attention" / "full_attention", newer configs)
    /// or sliding_window_pattern (older Gemma 3 configs: every n-th layer is global), as a period.</summary>
    static int ReadLayerPattern(JsonObject json, ConfigFields f, int layers, int fallback, string source)
    {
        if (json["layer_types"] is not { } node) return f.Int("sliding_window_pattern", 1, MaxLayers) ?? fallback;
        const string expected = "a list with one \"sliding_attention\" or \"full_attention\" per layer, every n-th one full";
        if (node is not JsonArray types || types.Count != layers
            || types.Any(t => t?.GetValueKind() != JsonValueKind.String || t.GetValue<string>() is not ("sliding_attention" or "full_attention")))
            throw ConfigFields.Error(source, "layer_types", ConfigFields.Show(node), expected + $" ({layers} entries)");
        var global = types.Select(t => t!.GetValue<string>() == "full_attention").ToArray();
        var period = Array.IndexOf(global, true) + 1;
        if (period == 0) return f.Int("sliding_window_pattern", layers + 1, MaxLayers) ?? layers + 1; // no global layer here
        if (global.Where((g, i) => g != ((i + 1) % period == 0)).Any())
            throw ConfigFields.Error(source, "layer_types", ConfigFields.Show(node), expected);
        return period;
    }

    static RopeScaling? ReadRopeScaling(JsonNode? node, string source, int maxPositions, int headDim, int? originalMaxPositions)
    {
        if (node is null) return null;
        if (node is not JsonObject o)
            throw ConfigFields.Error(source, "rope_scaling", ConfigFields.Show(node), "an object such as {\"rope_type\": \"linear\", \"factor\": 2.0}");
        var f = new ConfigFields(o, source);
        try
        {
            var type = (o["rope_type"] is not null ? f.String("rope_type") : f.String("type"))
                       ?? throw new InvalidDataException($"{source}: rope_scaling has no 'rope_type'; add one (linear, dynamic or llama3).");
            if (type == "default") return null;
            if (type is "longrope" or "su") return ReadLongRope(o, f, source, maxPositions, headDim, originalMaxPositions);
            if (type is not ("linear" or "dynamic" or "llama3"))
                throw new InvalidDataException(
                    $"{source}: rope_scaling type '{type}' is not supported; supported: linear, dynamic, llama3, longrope (su).");
            return new RopeScaling(type, f.Double("factor", 1, 1e6, minExclusive: false) ?? 1, f.Double("low_freq_factor", 0, 1e6) ?? 1,
                f.Double("high_freq_factor", 0, 1e6) ?? 4, f.Int("original_max_position_embeddings", 1, MaxPositionsLimit));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException(e.Message.Replace("field '", "field 'rope_scaling.", StringComparison.Ordinal), e);
        }
    }

    /// <summary>
    /// Phi-3's longrope as Hugging Face resolves it: the original length from the config's top level (else from
    /// rope_scaling, else max_position_embeddings), the factor max_position_embeddings / original when an original
    /// length is given (else rope_scaling.factor), the attention factor sqrt(1 + ln factor / ln original) unless
    /// rope_scaling gives attention_factor.
    /// </summary>
    static RopeScaling ReadLongRope(JsonObject o, ConfigFields f, string source, int maxPositions, int headDim, int? topLevelOriginal)
    {
        var original = topLevelOriginal ?? f.Int("original_max_position_embeddings", 1, MaxPositionsLimit);
        var factor = original is { } given ? (double)maxPositions / given : f.Double("factor", 0, 1e6) ?? 1;
        original ??= maxPositions;
        var attention = f.Double("attention_factor", 0, 1e6)
                        ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original.Value)));
        double[] Factors(string key)
        {
            const string expected = "a list of head_dim / 2 positive numbers";
            if (o[key] is not JsonArray list) throw ConfigFields.Error(source, key, ConfigFields.Show(o[key]), expected);
            if (list.Count != headDim / 2)
                throw ConfigFields.Error(source, key, $"a list of {list.Count} numbers", $"a list of {headDim / 2} (head_dim / 2) positive numbers");
            return list.Select((x, i) => x is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() is var d
                                              && double.IsFinite(d) && d > 0
                ? d
                : throw ConfigFields.Error(source, $"{key}[{i}]", ConfigFields.Show(x), "a positive number")).ToArray();
        }
        return new RopeScaling("longrope", factor, OriginalMaxPositions: original, ShortFactor: Factors("short_factor"),
            LongFactor: Factors("long_factor"), AttentionFactor: attention);
    }

    /// <summary>The Hugging Face config.json for this model.</summary>
    public string ToJson()
    {
        var modelType = Architecture switch
        {
            "MistralForCausalLM" => "mistral",
            "Qwen2ForCausalLM" => "qwen2",
            "Qwen3ForCausalLM" => "qwen3",
            "Phi3ForCausalLM" => "phi3",
            "Gemma2ForCausalLM" => "gemma2",
            "Gemma3ForCausalLM" => "gemma3_text",
            _ => "llama",
        };
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = modelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = IsGemma ? "gelu_pytorch_tanh" : "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositions,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["torch_dtype"] = "float32",
        };
        if (Architecture != "Qwen2ForCausalLM") json["attention_bias"] = AttentionBias;
        if (IsGemma)
        {
            json["query_pre_attn_scalar"] = QueryPreAttnScalar;
            json["attn_logit_softcapping"] = AttnLogitSoftcap;
            json["final_logit_softcapping"] = FinalLogitSoftcap;
            if (RopeLocalTheta is { } local) json["rope_local_base_freq"] = local;
            if (SlidingWindowPattern is { } pattern) json["sliding_window_pattern"] = pattern;
            json["layer_types"] = new JsonArray(Enumerable.Range(0, NumLayers)
                .Select(i => (JsonNode)(IsSlidingLayer(i) ? "sliding_attention" : "full_attention")).ToArray());
        }
        if (SlidingWindow is { } w)
        {
            json["sliding_window"] = w;
            if (Architecture is "Qwen2ForCausalLM" or "Qwen3ForCausalLM")
                (json["use_sliding_window"], json["max_window_layers"]) = (true, 0);
        }
        if (RopeScaling is { Type: "longrope" } longRope)
        {
            // Phi-3's layout: the original length at the top level, the factor implied by max_position_embeddings.
            json["original_max_position_embeddings"] = longRope.OriginalMaxPositions;
            json["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "longrope",
                ["type"] = "longrope",
                ["short_factor"] = new JsonArray(longRope.ShortFactor!.Select(x => (JsonNode)x).ToArray()),
                ["long_factor"] = new JsonArray(longRope.LongFactor!.Select(x => (JsonNode)x).ToArray()),
                ["attention_factor"] = longRope.AttentionFactor,
            };
        }
        else if (RopeScaling is { } s)
        {
            var r = new JsonObject { ["rope_type"] = s.Type, ["factor"] = s.Factor };
            if (s.Type == "llama3")
            {
                r["low_freq_factor"] = s.LowFreqFactor;
                r["high_freq_factor"] = s.HighFreqFactor;
            }
            if (s.OriginalMaxPositions is { } m) r["original_max_position_embeddings"] = m;
            json["rope_scaling"] = r;
        }
        if (BosTokenId is { } bos) json["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) json["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(EosTokenIds.Select(x => (JsonNode)x).ToArray());
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
