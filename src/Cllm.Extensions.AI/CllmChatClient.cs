using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;
using Cllm.Decoding;
using Cllm.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cllm.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> over a local <see cref="CllmEngine"/>. Streaming gives one update per forward
/// pass with every token that pass made final (several with Jacobi decoding). Tool calls in the model's
/// format become <see cref="FunctionCallContent"/>, so <c>UseFunctionInvocation</c>, Semantic Kernel and
/// agents run them. Requests queue on the engine (one at a time); cancellation stops within one pass.
/// Temperature, TopP, TopK and Seed sample exactly with every decoder: the i-th new token is an inverse-CDF draw
/// with a uniform fixed by the seed and i, and Jacobi or lookahead accept a guess only when that draw lands on it,
/// so with the same seed every decoder gives the same text, which follows the model's distribution.
/// Cllm's own knobs per request: <c>ChatOptions.AdditionalProperties</c> with <see cref="DecoderKey"/> ("jacobi",
/// "lookahead" or "ar"), <see cref="BlockSizeKey"/>, <see cref="InitialGuessKey"/>, <see cref="NgramSizeKey"/> and
/// <see cref="NgramsPerKeyKey"/>, or a
/// <see cref="GenerationOptions"/> from <c>ChatOptions.RawRepresentationFactory</c> as the base that ChatOptions override.
/// </summary>
public sealed partial class CllmChatClient : IChatClient
{
    public const string ProviderName = "cllm";

    /// <summary>Name of the <see cref="Meter"/> and <see cref="ActivitySource"/> (add it to OpenTelemetry).</summary>
    public const string TelemetrySourceName = "Cllm";

    /// <summary>ChatOptions.AdditionalProperties keys for Cllm's own knobs.</summary>
    public const string DecoderKey = "cllm.decoder", BlockSizeKey = "cllm.block_size", InitialGuessKey = "cllm.initial_guess",
        NgramSizeKey = "cllm.ngram_size", NgramsPerKeyKey = "cllm.ngrams_per_key";

    /// <summary>UsageDetails.AdditionalCounts keys.</summary>
    public const string ForwardPassesCount = "cllm.forward_passes", FastForwardedTokensCount = "cllm.fast_forwarded_tokens",
        PooledTokensCount = "cllm.pooled_tokens";

    static readonly ActivitySource s_activitySource = new(TelemetrySourceName);
    static readonly Meter s_meter = new(TelemetrySourceName);
    static readonly Counter<long> s_tokens = s_meter.CreateCounter<long>("cllm.tokens", "{token}", "Prompt (input) and generated (output) tokens.");
    static readonly Counter<long> s_passes = s_meter.CreateCounter<long>("cllm.forward_passes", "{pass}", "Forward passes, prefill included.");
    static readonly Histogram<double> s_tokensPerPass = s_meter.CreateHistogram<double>("cllm.tokens_per_pass", "{token}", "Generated tokens per forward pass of a response.");
    static readonly Histogram<double> s_tokensPerSecond = s_meter.CreateHistogram<double>("cllm.tokens_per_second", "{token}/s", "Generated tokens per second of a response (prefill included).");

    // Tool results go into the prompt as compact JSON, with SQL quotes and '<' readable (as in training).
    static readonly JsonSerializerOptions s_json = new(AIJsonUtilities.DefaultOptions) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = false };

    readonly CllmEngine _engine;
    readonly bool _ownsEngine;
    readonly CllmChatClientOptions _options;
    readonly IChatFormat _format;
    readonly ILogger _logger;
    readonly ChatClientMetadata _metadata;
    readonly int[] _stopIds;
    readonly string[] _stopTexts;
    volatile bool _disposed;

    /// <summary>Loads the model at <see cref="CllmChatClientOptions.ModelPath"/>; the client owns and disposes it.</summary>
    public CllmChatClient(CllmChatClientOptions options, ILoggerFactory? loggerFactory = null)
        : this(Load(options), ownsEngine: true, options, chatFormat: null, loggerFactory)
    {
    }

    /// <summary>A client over an engine the caller owns (and disposes after the client).</summary>
    public CllmChatClient(CllmEngine engine, CllmChatClientOptions? options = null, IChatFormat? chatFormat = null, ILoggerFactory? loggerFactory = null)
        : this(engine ?? throw new ArgumentNullException(nameof(engine)), ownsEngine: false,
            options ?? new CllmChatClientOptions { ModelPath = engine.ModelDirectory ?? "" }, chatFormat, loggerFactory)
    {
    }

    CllmChatClient(CllmEngine engine, bool ownsEngine, CllmChatClientOptions options, IChatFormat? chatFormat, ILoggerFactory? loggerFactory)
    {
        try
        {
            if (options.BlockSize is < 2 or > 256)
                throw new ArgumentOutOfRangeException(nameof(options), options.BlockSize, "CllmChatClientOptions.BlockSize must be between 2 and 256.");
            if (options.MaxOutputTokens <= 0)
                throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputTokens, "CllmChatClientOptions.MaxOutputTokens must be at least 1.");
            _engine = engine;
            _ownsEngine = ownsEngine;
            _options = options;
            _logger = (ILogger?)loggerFactory?.CreateLogger<CllmChatClient>() ?? NullLogger.Instance;
            _format = chatFormat ?? (options.ChatFormat is { } name ? ChatFormats.FromName(name) : DetectFormat(engine));
            ModelId = options.ModelId ?? (engine.ModelDirectory is { } dir ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))) : engine.Config.Architecture);
            _metadata = new ChatClientMetadata(ProviderName, engine.ModelDirectory is { } d ? new Uri(Path.GetFullPath(d)) : null, ModelId);

            // Stop texts that are one token are stopped on by id (the engine's EOS too); the rest on text.
            var tokenizer = engine.Tokenizer;
            _stopIds = [.. engine.EosIds.Concat(_format.StopTexts.Select(t => tokenizer.TokenToId(t)).OfType<int>()).Distinct()];
            _stopTexts = [.. _format.StopTexts.Where(t => tokenizer.TokenToId(t) is null)];
            Log.Created(_logger, ModelId, _format.Name, options.Decoder, engine.ContextLength);
        }
        catch
        {
            if (ownsEngine) engine.Dispose();
            throw;
        }
    }

    public string ModelId { get; }

    public CllmEngine Engine => _engine;

    public IChatFormat ChatFormat => _format;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var request = Prepare(messages, options);
        string responseId = NewId("resp"), messageId = NewId("msg");
        var createdAt = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(IList<AIContent> contents) =>
            new(ChatRole.Assistant, contents) { ResponseId = responseId, MessageId = messageId, CreatedAt = createdAt, ModelId = ModelId };

        using var activity = s_activitySource.StartActivity($"chat {ModelId}");
        activity?.SetTag("gen_ai.operation.name", "chat").SetTag("gen_ai.provider.name", ProviderName).SetTag("gen_ai.request.model", ModelId)
            .SetTag("cllm.decoder", request.Generation.Decoder.ToString()).SetTag("gen_ai.usage.input_tokens", request.PromptIds.Length);

        // TorchSharp's dispose scopes are thread-static, so the engine enumerates on one dedicated thread and
        // hands each pass's tokens over; the iterator never awaits in the middle of a tensor step.
        var stats = new DecodingStats();
        var chunks = Channel.CreateUnbounded<int[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var clock = Stopwatch.StartNew();
        var producer = Task.Factory.StartNew(() => Produce(request, stats, chunks.Writer, stop.Token),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var output = new OutputParser(this, request);
        try
        {
            await foreach (var tokens in chunks.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested(); // passes already queued are not shown after a cancel
                var text = output.Push(tokens);
                if (text.Length > 0) yield return Update([new TextContent(text)]);
                if (output.StopMatched) break;
            }
        }
        finally
        {
            // A stop sequence, a consumer that stops reading, or cancellation: end generation after this pass.
            await stop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var seconds = clock.Elapsed.TotalSeconds;
        var (rest, calls) = output.Finish();
        var final = new List<AIContent>();
        if (rest.Length > 0) final.Add(new TextContent(rest));
        final.AddRange(calls);
        var usage = new UsageDetails
        {
            InputTokenCount = request.PromptIds.Length,
            OutputTokenCount = stats.GeneratedTokens,
            TotalTokenCount = request.PromptIds.Length + stats.GeneratedTokens,
            AdditionalCounts = new()
            {
                [ForwardPassesCount] = stats.ForwardPasses, [FastForwardedTokensCount] = stats.FastForwardedTokens,
                [PooledTokensCount] = stats.PooledTokens,
            },
        };
        final.Add(new UsageContent(usage));
        var finishReason = calls.Count > 0 ? ChatFinishReason.ToolCalls
            : output.StopMatched || stats.FinishReason == Decoding.FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
        if (request.Json && calls.Count == 0 && JsonError(output.Text) is { } error)
        {
            // Not constrained yet, only checked: the caller gets the text and a non-fatal error beside it.
            Log.InvalidJson(_logger, error);
            final.Insert(final.Count - 1, new ErrorContent("JSON output was asked for but the answer is not valid JSON: " + error) { ErrorCode = "invalid_json" });
        }

        var last = Update(final);
        last.FinishReason = finishReason;

        Record(request, stats, seconds, finishReason, activity);
        yield return last;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(CllmEngine)) return _engine;
        if (serviceType == typeof(TextTokenizer)) return _engine.Tokenizer;
        if (serviceType == typeof(IChatFormat)) return _format;
        if (serviceType == typeof(CllmChatClientOptions)) return _options;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Disposes the engine if the client loaded it (after a running request finishes); later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsEngine) _engine.Dispose();
    }

    static CllmEngine Load(CllmChatClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ModelPath))
            throw new ArgumentException("CllmChatClientOptions.ModelPath must name a model folder (config.json, safetensors, tokenizer).", nameof(options));
        return CllmEngine.Load(options.ModelPath, options.ToEngineOptions());
    }

    // A folder names its format in tokenizer_config.json; an engine built in memory is recognised by its markers.
    static IChatFormat DetectFormat(CllmEngine engine)
    {
        if (engine.ModelDirectory is { } dir) return ChatFormats.Detect(dir, engine.Config);
        var t = engine.Tokenizer;
        if (t.TokenToId(CllmChatFormat.Assistant) is not null) return ChatFormats.Cllm;
        if (t.TokenToId("<|im_start|>") is not null) return ChatFormats.ChatMl;
        if (t.TokenToId("<|start_header_id|>") is not null) return ChatFormats.Llama3;
        return ChatFormats.Instruction;
    }

    void Produce(Request request, DecodingStats stats, ChannelWriter<int[]> writer, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var chunk in _engine.Generate(request.PromptIds, request.Generation, stats, cancellationToken))
                writer.TryWrite(chunk.Tokens);
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
        }
    }

    void Record(Request request, DecodingStats stats, double seconds, ChatFinishReason finishReason, Activity? activity)
    {
        var decoder = new KeyValuePair<string, object?>("cllm.decoder", request.Generation.Decoder.ToString());
        s_tokens.Add(request.PromptIds.Length, decoder, new("gen_ai.token.type", "input"));
        s_tokens.Add(stats.GeneratedTokens, decoder, new("gen_ai.token.type", "output"));
        s_passes.Add(stats.ForwardPasses, decoder);
        s_tokensPerPass.Record(stats.TokensPerPass, decoder);
        double tokensPerSecond = seconds > 0 ? stats.GeneratedTokens / seconds : 0;
        s_tokensPerSecond.Record(tokensPerSecond, decoder);
        activity?.SetTag("gen_ai.usage.output_tokens", stats.GeneratedTokens).SetTag("gen_ai.response.finish_reasons", finishReason.Value)
            .SetTag("cllm.forward_passes", stats.ForwardPasses).SetTag("cllm.tokens_per_pass", stats.TokensPerPass);
        Log.Generated(_logger, stats.GeneratedTokens, stats.ForwardPasses, stats.TokensPerPass, tokensPerSecond, finishReason.Value);
    }

    // ---- Request mapping -------------------------------------------------------------------------------

    /// <summary>A tool and the name the model sees it under.</summary>
    sealed record Tool(string Shown, AIFunctionDeclaration Function);

    sealed record Request(int[] PromptIds, GenerationOptions Generation, string[] StopTexts, IReadOnlyList<Tool> Tools,
        string? ForcedPrefix, bool AllowMultipleToolCalls, bool Json);

    Request Prepare(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        Validate(options);
        var baseline = options?.RawRepresentationFactory?.Invoke(this) as GenerationOptions;
        var tools = options?.ToolMode is NoneChatToolMode ? [] : ToolsOf(options);
        var toolMode = tools.Count == 0 ? null : options!.ToolMode;
        if (tools.Count > 0 && _format.ToolCallStart is null)
            throw new NotSupportedException($"The model's chat format '{_format.Name}' has no tool calling; leave ChatOptions.Tools out or set ToolMode = None.");
        string? forced = toolMode switch
        {
            RequiredChatToolMode { RequiredFunctionName: { } name } => _format.ForcedToolCallPrefix(tools.FirstOrDefault(t => t.Function.Name == name)?.Shown
                ?? throw new ArgumentException($"ChatOptions.ToolMode requires '{name}', which is not among ChatOptions.Tools.", nameof(options))),
            RequiredChatToolMode => _format.ForcedToolCallPrefix(null),
            _ => null,
        };

        bool json = options?.ResponseFormat is ChatResponseFormatJson;
        string? formatInstruction = options?.ResponseFormat is ChatResponseFormatJson { Schema: { } schema }
            ? "Respond only with JSON that matches this schema: " + schema.GetRawText()
            : json ? "Respond only with JSON." : null;
        var shown = tools.ToDictionary(t => t.Function.Name, t => t.Shown);
        var turns = ToTurns(messages, string.Join("\n", new[] { options?.Instructions, formatInstruction }.Where(s => !string.IsNullOrEmpty(s))),
            name => shown.GetValueOrDefault(name, name));
        string prompt = _format.Render(turns, tools.Count == 0 ? null : [.. tools.Select(t => ToToolDefinition(t.Shown, t.Function))], addGenerationPrompt: true) + forced;
        Log.Prompt(_logger, prompt);
        int[] ids = _engine.Tokenizer.Encode(prompt, addSpecial: !_format.RendersBos); // a model's template writes its own BOS
        if (ids.Length >= _engine.ContextLength)
            throw new ArgumentException(
                $"The prompt is {ids.Length} tokens but the context holds {_engine.ContextLength} (prompt and answer together); shorten the conversation or raise ContextLength.",
                nameof(messages));

        float temperature = options?.Temperature ?? baseline?.Temperature ?? 0;
        var decoder = Knob(options, DecoderKey, ParseDecoder) ?? baseline?.Decoder ?? _options.Decoder;

        var generation = (baseline ?? new GenerationOptions()) with
        {
            Decoder = decoder,
            MaxNewTokens = options?.MaxOutputTokens ?? baseline?.MaxNewTokens ?? _options.MaxOutputTokens ?? _engine.ContextLength - ids.Length,
            BlockSize = Knob(options, BlockSizeKey, v => (int?)Convert.ToInt32(Scalar(v), CultureInfo.InvariantCulture)) ?? baseline?.BlockSize ?? _options.BlockSize,
            InitialGuess = Knob(options, InitialGuessKey, v => (JacobiGuess?)Enum.Parse<JacobiGuess>(Scalar(v)!.ToString()!, ignoreCase: true))
                ?? baseline?.InitialGuess ?? _options.InitialGuess,
            NgramSize = Knob(options, NgramSizeKey, v => (int?)Convert.ToInt32(Scalar(v), CultureInfo.InvariantCulture)) ?? baseline?.NgramSize ?? _options.NgramSize,
            NgramsPerKey = Knob(options, NgramsPerKeyKey, v => (int?)Convert.ToInt32(Scalar(v), CultureInfo.InvariantCulture))
                ?? baseline?.NgramsPerKey ?? _options.NgramsPerKey,
            Temperature = temperature,
            TopP = options?.TopP ?? baseline?.TopP ?? 1,
            TopK = options?.TopK ?? baseline?.TopK ?? 0,
            Seed = options?.Seed ?? baseline?.Seed,
            StopTokenIds = _stopIds,
        };
        try
        {
            generation.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentOutOfRangeException(nameof(options), e.ActualValue, e.Message);
        }

        string[] stopTexts = [.. _stopTexts.Concat(options?.StopSequences?.Where(s => !string.IsNullOrEmpty(s)) ?? [])];
        Log.Generating(_logger, ids.Length, decoder, tools.Count);
        return new Request(ids, generation, stopTexts, tools, forced, options?.AllowMultipleToolCalls ?? true, json);
    }

    void Validate(ChatOptions? options)
    {
        if (options is null) return;
        if (options.MaxOutputTokens is <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputTokens, "ChatOptions.MaxOutputTokens must be at least 1.");
        if (options.Temperature is { } t && (!float.IsFinite(t) || t < 0))
            throw new ArgumentOutOfRangeException(nameof(options), t, "ChatOptions.Temperature must be a finite number >= 0 (0 is greedy).");
        if (options.TopP is { } p && (!float.IsFinite(p) || p <= 0 || p > 1))
            throw new ArgumentOutOfRangeException(nameof(options), p, "ChatOptions.TopP must be in (0, 1].");
        if (options.TopK is < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "ChatOptions.TopK must be >= 0 (0 keeps every token).");
        if (options.FrequencyPenalty is { } f && f != 0 || options.PresencePenalty is { } pp && pp != 0)
            throw new NotSupportedException("CllmChatClient does not implement frequency or presence penalties.");
        if (options.ConversationId is not null)
            throw new NotSupportedException("CllmChatClient keeps no server-side conversations; send the whole history instead of a ConversationId.");
        if (options.ContinuationToken is not null)
            throw new NotSupportedException("CllmChatClient has no background responses to continue.");
        if (options.ModelId is { } id && !string.Equals(id, ModelId, StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"This client serves model '{ModelId}'; ChatOptions.ModelId asked for '{id}'. Make a client for that model.");
        if (options.ResponseFormat is not (null or ChatResponseFormatText or ChatResponseFormatJson))
            throw new NotSupportedException($"Response format {options.ResponseFormat.GetType().Name} is not supported.");
    }

    /// <summary>
    /// The offered functions. Semantic Kernel names a plugin's function "plugin_function"; the model sees the
    /// function's own name when no other offered function has it, since that is the name models are trained
    /// to call (a call to it is mapped back to the full name).
    /// </summary>
    static List<Tool> ToolsOf(ChatOptions? options)
    {
        var functions = new List<AIFunctionDeclaration>();
        foreach (var tool in options?.Tools ?? [])
        {
            functions.Add(tool as AIFunctionDeclaration ?? throw new NotSupportedException(
                $"Tool '{tool.Name}' is a {tool.GetType().Name}; a local model can only call functions (AIFunction)."));
        }

        // Semantic Kernel's functions carry a PluginName and expose "plugin_function" as the AIFunction name;
        // read it by reflection so this package needs no Semantic Kernel reference.
        static string OwnName(AIFunctionDeclaration f) =>
            f.GetType().GetProperty("PluginName")?.GetValue(f) is string plugin && plugin.Length > 0
                && f.Name.Length > plugin.Length + 1 && f.Name.StartsWith(plugin, StringComparison.Ordinal)
                ? f.Name[(plugin.Length + 1)..]
                : f.Name;
        return [.. functions.Select(f => new Tool(functions.Count(g => OwnName(g) == OwnName(f)) == 1 ? OwnName(f) : f.Name, f))];
    }

    static T? Knob<T>(ChatOptions? options, string key, Func<object, T?> parse) where T : struct
    {
        if (options?.AdditionalProperties?.TryGetValue(key, out var value) is not true || value is null) return null;
        try
        {
            return parse(value);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidCastException or OverflowException or InvalidOperationException)
        {
            throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] = '{value}' is not valid: {e.Message}", nameof(options), e);
        }
    }

    static object? Scalar(object value) => value is JsonElement e
        ? e.ValueKind switch { JsonValueKind.String => e.GetString(), JsonValueKind.Number => e.GetInt64(), _ => e.GetRawText() }
        : value;

    static DecoderKind? ParseDecoder(object value) => Scalar(value) switch
    {
        DecoderKind kind => kind,
        string s when s.Equals("ar", StringComparison.OrdinalIgnoreCase) => DecoderKind.Autoregressive,
        string s when Enum.TryParse<DecoderKind>(s, ignoreCase: true, out var kind) && Enum.IsDefined(kind) && !int.TryParse(s, out _) => kind,
        var other => throw new FormatException($"expected \"jacobi\", \"lookahead\" or \"ar\", got {other}"),
    };

    /// <summary>
    /// Messages to the format's turns. Instructions and leading system messages become one system turn; earlier
    /// calls are written under the name the model sees the tool by.
    /// </summary>
    static List<ChatTurn> ToTurns(IEnumerable<ChatMessage> messages, string instructions, Func<string, string> shownName)
    {
        var turns = new List<ChatTurn>();
        var system = new StringBuilder(instructions);
        foreach (var message in messages)
        {
            if (message.Role == ChatRole.System)
            {
                if (turns.Count == 0) system.Append(system.Length > 0 ? "\n" : "").Append(message.Text);
                else turns.Add(new("system", message.Text));
                continue;
            }

            if (turns.Count == 0 && system.Length > 0) turns.Add(new("system", system.ToString()));
            var text = new StringBuilder();
            var calls = new List<ToolCall>();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent t: text.Append(t.Text); break;
                    case FunctionCallContent call: calls.Add(new ToolCall(shownName(call.Name), new Dictionary<string, object?>(call.Arguments ?? new Dictionary<string, object?>()))); break;
                    case FunctionResultContent result: turns.Add(new("tool", ResultText(result.Result))); break;
                    case TextReasoningContent or UsageContent or ErrorContent: break; // not part of what the model reads
                    default: throw new NotSupportedException($"A {content.GetType().Name} in a {message.Role} message can't be given to a text-only local model.");
                }
            }

            string role = message.Role == ChatRole.Assistant ? "assistant" : message.Role == ChatRole.Tool ? "tool" : "user";
            if (role == "assistant")
            {
                turns.Add(new("assistant", text.ToString(), calls.FirstOrDefault()));
                turns.AddRange(calls.Skip(1).Select(c => new ChatTurn("assistant", "", c))); // one call per turn, as the formats write them
            }
            else if (text.Length > 0 || (role == "user" && message.Contents.Count == 0))
            {
                turns.Add(new(role == "tool" ? "tool" : "user", text.ToString()));
            }
        }

        if (turns.Count == 0 && system.Length > 0) turns.Add(new("system", system.ToString()));
        return turns;
    }

    static string ResultText(object? result) => result switch
    {
        null => "null",
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString()!,
        JsonElement e => e.GetRawText(),
        _ => JsonSerializer.Serialize(result, s_json),
    };

    /// <summary>An AIFunction's JSON schema as the formats' tool definition: parameter names, types, descriptions.</summary>
    static ToolDefinition ToToolDefinition(string name, AIFunctionDeclaration function)
    {
        var schema = function.JsonSchema;
        var required = schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("required", out var r) && r.ValueKind == JsonValueKind.Array
            ? r.EnumerateArray().Select(e => e.GetString()).ToHashSet()
            : [];
        var parameters = new List<ToolParameter>();
        if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in properties.EnumerateObject())
            {
                string description = p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : "";
                parameters.Add(new ToolParameter(p.Name, TypeName(p.Value), description, required.Contains(p.Name)));
            }
        }

        return new ToolDefinition(name, function.Description, parameters);
    }

    // "type" may be a list such as ["integer", "null"] for a nullable parameter.
    static string TypeName(JsonElement property)
    {
        if (property.ValueKind != JsonValueKind.Object || !property.TryGetProperty("type", out var type)) return "string";
        if (type.ValueKind == JsonValueKind.String) return type.GetString()!;
        return type.ValueKind == JsonValueKind.Array
            ? type.EnumerateArray().Select(t => t.GetString()).FirstOrDefault(t => t is not null and not "null") ?? "string"
            : "string";
    }

    static string? JsonError(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text);
            return null;
        }
        catch (JsonException e)
        {
            return e.Message;
        }
    }

    static string NewId(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N");

    // ---- Output parsing -----------------------------------------------------------------------------------

    /// <summary>
    /// Turns each pass's tokens into the text that is safe to show: stop sequences are matched on the decoded
    /// text across token boundaries and never shown, so only the longest tail that could still begin a stop
    /// sequence (or a tool call's start marker) is held back. From a tool call's marker on, text is kept aside
    /// and parsed when generation ends.
    /// </summary>
    sealed class OutputParser(CllmChatClient client, Request request)
    {
        readonly StreamingDetokenizer _detokenizer = client._engine.Tokenizer.CreateStreamingDetokenizer(skipSpecial: false);
        readonly HashSet<int> _stopIds = [.. client._stopIds];
        readonly string? _toolStart = request.Tools.Count > 0 ? client._format.ToolCallStart : null;
        readonly StringBuilder _pending = new();
        readonly StringBuilder _shown = new();
        readonly JsonValueScanner? _json = request.Json ? new() : null;
        StringBuilder? _call = request.ForcedPrefix is { } prefix ? new StringBuilder(prefix) : null;

        public bool StopMatched { get; private set; }

        /// <summary>All text shown so far.</summary>
        public string Text => _shown.ToString();

        public string Push(int[] tokens)
        {
            // Stop tokens end the turn; they are not text (skipSpecial=false keeps markers such as <tool_call>).
            int[] kept = tokens.Any(_stopIds.Contains) ? [.. tokens.Where(t => !_stopIds.Contains(t))] : tokens;
            return Accept(_detokenizer.Append(kept), final: false);
        }

        public (string Text, List<AIContent> Calls) Finish()
        {
            string text = StopMatched ? "" : Accept(_detokenizer.Flush(), final: true);
            var calls = new List<AIContent>();
            if (_call is null) return (text, calls);

            string raw = _call.ToString();
            var parsed = client._format.ParseToolCalls(raw);
            if (parsed is null || parsed.Count == 0)
            {
                Log.MalformedToolCall(client._logger, raw);
                _shown.Append(raw);
                return (text + raw, calls);
            }

            foreach (var call in request.AllowMultipleToolCalls ? parsed : parsed.Take(1))
                calls.Add(new FunctionCallContent(NewId("call"), ResolveName(call.Name), new Dictionary<string, object?>(call.Arguments)));
            return (text, calls);
        }

        string Accept(string piece, bool final)
        {
            if (_call is not null)
            {
                _call.Append(piece);
                return "";
            }

            _pending.Append(piece);
            string pending = _pending.ToString();
            var (at, marker) = FirstMarker(pending);
            string show;
            if (marker is not null)
            {
                show = pending[..at];
                if (marker == _toolStart) _call = new StringBuilder(pending[at..]);
                else StopMatched = true;
                _pending.Clear();
            }
            else
            {
                int hold = final ? 0 : HeldBack(pending);
                show = pending[..^hold];
                _pending.Remove(0, pending.Length - hold);
            }

            // JSON was asked for: the answer ends with the first complete value, not with whatever the model adds.
            if (_json?.Feed(show) is int end and >= 0)
            {
                show = show[..end];
                StopMatched = true;
            }

            _shown.Append(show);
            return show;
        }

        (int At, string? Marker) FirstMarker(string text)
        {
            (int At, string? Marker) best = (int.MaxValue, null);
            foreach (var marker in Markers())
            {
                int at = text.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0 && at < best.At) best = (at, marker);
            }

            return best;
        }

        // The longest suffix of text that is a proper prefix of a marker.
        int HeldBack(string text)
        {
            int hold = 0;
            foreach (var marker in Markers())
            {
                for (int n = Math.Min(marker.Length - 1, text.Length); n > hold; n--)
                {
                    if (text.AsSpan(text.Length - n).SequenceEqual(marker.AsSpan(0, n)))
                    {
                        hold = n;
                        break;
                    }
                }
            }

            return hold;
        }

        IEnumerable<string> Markers() => _toolStart is null ? request.StopTexts : request.StopTexts.Append(_toolStart);

        // The name shown, else the full name, else the one offered tool the name is unambiguously the end of
        // (a model that drops a plugin prefix). An unknown name stays: function invocation reports it to the model.
        string ResolveName(string name)
        {
            if (request.Tools.FirstOrDefault(t => t.Shown == name || t.Function.Name == name) is { } exact) return exact.Function.Name;
            var matches = request.Tools.Select(t => t.Function.Name).Where(n => n.Equals(name, StringComparison.OrdinalIgnoreCase) ||
                n.Length > name.Length && n.EndsWith(name, StringComparison.OrdinalIgnoreCase) && n[^(name.Length + 1)] is '_' or '-' or '.').ToList();
            return matches.Count == 1 ? matches[0] : name;
        }
    }

    /// <summary>Finds where a top-level JSON object or array ends in text fed piece by piece.</summary>
    internal sealed class JsonValueScanner
    {
        int _depth;
        bool _started, _inString, _escaped, _done;

        /// <summary>The length of the piece up to and including the closing bracket of the value; -1 while it is still open (or was not one).</summary>
        public int Feed(string piece)
        {
            for (int i = 0; i < piece.Length && !_done; i++)
            {
                char c = piece[i];
                if (!_started)
                {
                    if (char.IsWhiteSpace(c)) continue;
                    if (c is not ('{' or '[')) _done = true; // not an object or array: leave it to validation
                    _started = true;
                }

                if (_inString)
                {
                    if (_escaped) _escaped = false;
                    else if (c == '\\') _escaped = true;
                    else if (c == '"') _inString = false;
                }
                else if (c == '"') _inString = true;
                else if (c is '{' or '[') _depth++;
                else if (c is '}' or ']' && --_depth == 0)
                {
                    _done = true;
                    return i + 1;
                }
            }

            return -1;
        }
    }

    static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Cllm chat client over {ModelId}: chat format {Format}, decoder {Decoder}, context {Context} tokens.")]
        public static partial void Created(ILogger logger, string modelId, string format, DecoderKind decoder, int context);

        [LoggerMessage(2, LogLevel.Debug, "Generating from a {PromptTokens}-token prompt with {Decoder} decoding and {ToolCount} tools.")]
        public static partial void Generating(ILogger logger, int promptTokens, DecoderKind decoder, int toolCount);

        [LoggerMessage(3, LogLevel.Debug, "Generated {Tokens} tokens in {Passes} forward passes ({TokensPerPass:F2} per pass, {TokensPerSecond:F1} tokens/s); finish reason {FinishReason}.")]
        public static partial void Generated(ILogger logger, int tokens, int passes, double tokensPerPass, double tokensPerSecond, string finishReason);

        [LoggerMessage(5, LogLevel.Warning, "The model wrote a tool call that does not parse; returning it as text: {Text}")]
        public static partial void MalformedToolCall(ILogger logger, string text);

        [LoggerMessage(7, LogLevel.Trace, "Prompt: {Prompt}")]
        public static partial void Prompt(ILogger logger, string prompt);

        [LoggerMessage(6, LogLevel.Warning, "JSON output was asked for but the answer is not valid JSON: {Error}")]
        public static partial void InvalidJson(ILogger logger, string error);
    }
}
