using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Cllm.Chat;
using Cllm.Decoding;
using Cllm.Text;
using Microsoft.Extensions.AI;

namespace Cllm.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> over a local <see cref="CllmEngine"/>: a mapping of messages to chat turns,
/// ChatOptions to generation settings and token chunks to updates; prompts, stops and tool-call parsing are the
/// runtime's chat layer (<see cref="PreparedTurn"/>). Streaming gives one update per forward pass with the text
/// that pass made final (several tokens with Jacobi decoding). Tool calls become <see cref="FunctionCallContent"/>.
/// Settings, first set wins: the raw representation (a <see cref="GenerationSettings"/> from
/// <c>ChatOptions.RawRepresentationFactory</c>), then ChatOptions (MaxOutputTokens, Temperature, TopP, TopK, Seed),
/// then <see cref="CllmChatClientOptions.Defaults"/>, then the built-in defaults. Usage carries Cllm's counts in
/// AdditionalCounts (<see cref="ForwardPassesCount"/>: tokens per pass is OutputTokenCount divided by it).
/// Telemetry and logging come from <c>UseOpenTelemetry</c> / <c>UseLogging</c>. Requests queue on the engine;
/// cancelling one, or disposing the client, ends generation after the current forward pass.
/// </summary>
public sealed class CllmChatClient : IChatClient
{
    public const string ProviderName = "cllm";

    /// <summary>UsageDetails.AdditionalCounts keys.</summary>
    public const string ForwardPassesCount = "cllm.forward_passes", FastForwardedTokensCount = "cllm.fast_forwarded_tokens",
        PooledTokensCount = "cllm.pooled_tokens";

    // Tool results go into the prompt as compact JSON, with SQL quotes and '<' readable (as in training).
    static readonly JsonSerializerOptions s_json = new(AIJsonUtilities.DefaultOptions)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = false,
    };

    static readonly Dictionary<string, object?> s_noArguments = [];

    readonly bool _ownsEngine;
    readonly CllmChatClientOptions _options;
    readonly ChatClientMetadata _metadata;
    readonly CancellationTokenSource _disposing = new();
    readonly string _poolKey = "client/" + Guid.NewGuid().ToString("N");

    /// <summary>Loads the model at <see cref="CllmChatClientOptions.ModelPath"/>; the client owns and disposes it.</summary>
    public CllmChatClient(CllmChatClientOptions options) : this(Load(options), ownsEngine: true, options, chatFormat: null) { }

    /// <summary>A client over an engine the caller owns (and disposes after its clients); many clients may share one.</summary>
    public CllmChatClient(CllmEngine engine, CllmChatClientOptions? options = null, IChatFormat? chatFormat = null)
        : this(engine ?? throw new ArgumentNullException(nameof(engine)), ownsEngine: false, options ?? new(), chatFormat) { }

    CllmChatClient(CllmEngine engine, bool ownsEngine, CllmChatClientOptions options, IChatFormat? chatFormat)
    {
        try
        {
            (Engine, _ownsEngine, _options) = (engine, ownsEngine, options);
            ChatFormat = chatFormat ?? (options.ChatFormat is { } name ? ChatFormats.FromName(name) : DetectFormat(engine));
            ModelId = options.ModelId ?? (engine.ModelDirectory is { } dir
                ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))) : engine.Config.Architecture);
            _metadata = new ChatClientMetadata(ProviderName, providerUri: null, ModelId); // no local paths in telemetry
        }
        catch
        {
            if (ownsEngine) engine.Dispose();
            throw;
        }
    }

    public string ModelId { get; }
    public CllmEngine Engine { get; }
    public IChatFormat ChatFormat { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
        var (request, fullNames) = ToRequest(messages, options);
        var turn = PreparedTurn.Create(ChatFormat, Engine.Tokenizer, Engine.EosIds, request, options?.StopSequences);
        string? poolKey = PoolKey(options);
        var generation = turn.Configure(Settings(options).ToOptions() with { NgramPoolKey = poolKey });
        string responseId = NewId("resp"), messageId = NewId("msg");
        var createdAt = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(IList<AIContent> contents) => new(ChatRole.Assistant, contents)
        {
            ResponseId = responseId, MessageId = messageId, CreatedAt = createdAt, ModelId = ModelId,
        };

        var reader = turn.CreateReader();
        var stats = new DecodingStats();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        try
        {
            await foreach (var chunk in Engine.GenerateAsync(turn.PromptIds, generation, stats, cancel.Token).ConfigureAwait(false))
            {
                string text = reader.Push(chunk.Tokens);
                if (text.Length > 0) yield return Update([new TextContent(text)]);
                if (reader.Ended) break; // a stop text: disposing the engine's stream ends generation after this pass
            }
        }
        finally
        {
            if (_options.NgramPoolScope == NgramPoolScope.Conversation && options?.ConversationId is null) Engine.ClearNgramPool(poolKey);
        }

        var result = reader.Finish();
        var final = new List<AIContent>();
        if (result.Text.Length > 0) final.Add(new TextContent(result.Text));
        final.AddRange(result.ToolCalls.Select(c => new FunctionCallContent(NewId("call"), fullNames.GetValueOrDefault(c.Name, c.Name),
            c.Arguments.ToDictionary(kv => kv.Key, kv => kv.Value))));
        if (result.JsonError is { } error)
            final.Add(new ErrorContent("JSON output was asked for but the answer is not valid JSON: " + error) { ErrorCode = "invalid_json" });
        final.Add(new UsageContent(new UsageDetails
        {
            InputTokenCount = turn.PromptIds.Length,
            OutputTokenCount = stats.GeneratedTokens,
            TotalTokenCount = turn.PromptIds.Length + stats.GeneratedTokens,
            AdditionalCounts = new()
            {
                [ForwardPassesCount] = stats.ForwardPasses, [FastForwardedTokensCount] = stats.FastForwardedTokens,
                [PooledTokensCount] = stats.PooledTokens,
            },
        }));
        var last = Update(final);
        last.FinishReason = result.ToolCalls.Count > 0 ? ChatFinishReason.ToolCalls
            : reader.Ended || stats.FinishReason == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
        yield return last;
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(CllmEngine)) return Engine;
        if (serviceType == typeof(TextTokenizer)) return Engine.Tokenizer;
        if (serviceType == typeof(IChatFormat)) return ChatFormat;
        if (serviceType == typeof(CllmChatClientOptions)) return _options;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Cancels this client's requests (each ends after its current forward pass, with an
    /// OperationCanceledException) and disposes the engine if the client loaded it; later calls throw.</summary>
    public void Dispose()
    {
        if (_disposing.IsCancellationRequested) return;
        _disposing.Cancel();
        if (_ownsEngine) Engine.Dispose();
    }

    internal static CllmEngine Load(CllmChatClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ModelPath))
            throw new ArgumentException(
                "CllmChatClientOptions.ModelPath must name a model folder (config.json, safetensors, tokenizer).", nameof(options));
        return CllmEngine.Load(options.ModelPath, options.Engine);
    }

    // A folder names its format in tokenizer_config.json; an engine built in memory is recognised by its markers.
    static IChatFormat DetectFormat(CllmEngine engine) => engine.ModelDirectory is { } dir
        ? ChatFormats.Detect(dir, engine.Config)
        : ChatFormats.FromTemplate(string.Join(" ", engine.Tokenizer.SpecialTokens.Keys)) ?? ChatFormats.Instruction;

    /// <summary>The request's settings: raw representation, then ChatOptions, then the client's defaults.</summary>
    internal GenerationSettings Settings(ChatOptions? options)
    {
        if (options is { FrequencyPenalty: not (null or 0) } or { PresencePenalty: not (null or 0) })
            throw new NotSupportedException("CllmChatClient does not implement frequency or presence penalties; leave them unset.");
        var raw = options?.RawRepresentationFactory?.Invoke(this) switch
        {
            null => new GenerationSettings(),
            GenerationSettings s => s,
            var other => throw new ArgumentException($"ChatOptions.RawRepresentationFactory returned a {other.GetType().Name}; " +
                "CllmChatClient takes a Cllm.Decoding.GenerationSettings.", nameof(options)),
        };
        var chat = new GenerationSettings
        {
            MaxNewTokens = options?.MaxOutputTokens, Temperature = options?.Temperature, TopP = options?.TopP,
            TopK = options?.TopK, Seed = options?.Seed,
        };
        return raw.Or(chat).Or(_options.Defaults).Or(new GenerationSettings { MaxNewTokens = CllmChatClientOptions.DefaultMaxOutputTokens });
    }

    string? PoolKey(ChatOptions? options) => _options.NgramPoolScope switch
    {
        NgramPoolScope.Engine => null,
        NgramPoolScope.Client => _poolKey,
        _ => _poolKey + "/" + (options?.ConversationId is { } id ? "conversation/" + id : "request/" + Guid.NewGuid().ToString("N")),
    };

    /// <summary>
    /// Messages and options to a turn request. Tools are offered under the function's own name when Semantic Kernel
    /// prefixed it with a plugin name that no other tool needs (models are trained to call plain names);
    /// the map gives the full name back.
    /// </summary>
    (ChatTurnRequest Request, Dictionary<string, string> FullNames) ToRequest(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var functions = options?.ToolMode is NoneChatToolMode ? [] : (options?.Tools ?? []).Select(t => t as AIFunctionDeclaration
            ?? throw new NotSupportedException($"Tool '{t.Name}' is a {t.GetType().Name}; a local model can only call functions.")).ToList();
        var shown = functions.ToDictionary(f => f.Name, f => functions.Count(g => OwnName(g) == OwnName(f)) == 1 ? OwnName(f) : f.Name);
        var tools = functions.Select(f => ToolDefinition.FromJsonSchema(shown[f.Name], f.Description, f.JsonSchema)).ToList();
        var choice = functions.Count == 0 ? ToolChoice.Auto : options!.ToolMode switch
        {
            RequiredChatToolMode { RequiredFunctionName: { } name } => ToolChoice.Tool(shown.GetValueOrDefault(name)
                ?? throw new ArgumentException($"ChatOptions.ToolMode requires '{name}', which is not among ChatOptions.Tools.", nameof(options))),
            RequiredChatToolMode => ToolChoice.Any,
            _ => ToolChoice.Auto,
        };
        var json = options?.ResponseFormat as ChatResponseFormatJson;
        string? jsonInstruction = json is null ? null
            : "Respond only with JSON" + (json.Schema is { } s ? " that matches this schema: " + s.GetRawText() : ".");
        string instructions = string.Join("\n", new[] { options?.Instructions, jsonInstruction }.Where(t => !string.IsNullOrEmpty(t)));
        var request = new ChatTurnRequest
        {
            Turns = ToTurns(messages, instructions, name => shown.GetValueOrDefault(name, name)),
            Tools = tools, ToolChoice = choice, AllowMultipleToolCalls = options?.AllowMultipleToolCalls ?? true,
            JsonOutput = json is not null, JsonSchema = json?.Schema?.GetRawText(),
        };
        // A call names the shown name (or the full one): both lead back to the function.
        return (request, functions.SelectMany(f => new[] { (Name: shown[f.Name], Full: f.Name), (Name: f.Name, Full: f.Name) })
            .DistinctBy(p => p.Name).ToDictionary(p => p.Name, p => p.Full));
    }

    // Semantic Kernel's functions carry a PluginName and are named "plugin_function"; read it by reflection, so
    // this package needs no Semantic Kernel reference.
    static string OwnName(AIFunctionDeclaration f) =>
        f.GetType().GetProperty("PluginName")?.GetValue(f) is string plugin && plugin.Length > 0
            && f.Name.Length > plugin.Length + 1 && f.Name.StartsWith(plugin, StringComparison.Ordinal)
            ? f.Name[(plugin.Length + 1)..] : f.Name;

    /// <summary>Instructions and leading system messages become one system turn; calls become assistant turns (one
    /// call each, as the formats write them), results tool turns.</summary>
    static List<ChatTurn> ToTurns(IEnumerable<ChatMessage> messages, string instructions, Func<string, string> shownName)
    {
        var turns = new List<ChatTurn>();
        var system = new StringBuilder(instructions);
        int index = 0;
        foreach (var message in messages)
        {
            if (message is null) throw new ArgumentException($"Message {index} is null.", nameof(messages));
            index++;
            if (message.Role == ChatRole.System && turns.Count == 0)
            {
                system.Append(system.Length > 0 ? "\n" : "").Append(message.Text);
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
                    case FunctionCallContent c:
                        calls.Add(new(shownName(c.Name), new Dictionary<string, object?>(c.Arguments ?? s_noArguments)));
                        break;
                    case FunctionResultContent r: turns.Add(new("tool", ResultText(r.Result))); break;
                    case TextReasoningContent or UsageContent or ErrorContent: break; // not part of what the model reads
                    case null: throw new ArgumentException($"Message {index - 1} holds a null content.", nameof(messages));
                    default: throw new NotSupportedException($"A {content.GetType().Name} can't be given to a text-only local model.");
                }
            }

            string role = message.Role == ChatRole.Assistant ? "assistant" : message.Role == ChatRole.Tool ? "tool"
                : message.Role == ChatRole.System ? "system" : "user";
            if (role == "assistant")
                turns.AddRange(calls.Count == 0 ? [new("assistant", text.ToString())]
                    : calls.Select((c, i) => new ChatTurn("assistant", i == 0 ? text.ToString() : "", c)));
            else if (text.Length > 0 || (role == "user" && message.Contents.Count == 0))
                turns.Add(new(role, text.ToString()));
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

    static string NewId(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N");
}
