using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Cllm.Chat;

namespace Cllm.Text;

/// <summary>One message. An assistant turn may carry a <see cref="ToolCall"/>; a "tool" turn's content is the result JSON.</summary>
public sealed record ChatTurn(string Role, string Content, ToolCall? ToolCall = null);

/// <summary>
/// A call the assistant makes. Argument values are strings, numbers, booleans, null, or <see cref="JsonElement"/>
/// (or any serializable value) for arrays and objects. Two calls are equal
/// when their canonical JSON is equal, so a call parsed back from text (numbers come back as long or
/// double) equals the one that was rendered (numbers may have been int).
/// </summary>
public sealed record ToolCall(string Name, IReadOnlyDictionary<string, object?> Arguments)
{
    /// <summary><c>{"name":"...","arguments":{...}}</c>, exactly as it appears between the tool-call markers.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = CllmChatFormat.Json.Encoder }))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            w.WriteStartObject("arguments");
            foreach (var (key, value) in Arguments)
            {
                w.WritePropertyName(key);
                JsonSerializer.Serialize(w, value, CllmChatFormat.Json);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public bool Equals(ToolCall? other) => other is not null && ToJson() == other.ToJson();

    public override int GetHashCode() => ToJson().GetHashCode(StringComparison.Ordinal);
}

/// <summary>
/// The default model's chat format, used both to render training data and by the chat client at inference:
/// <code>
/// &lt;|system|&gt;\n{system text}\nTools:\n{one line per tool}&lt;|end|&gt;\n
/// &lt;|user|&gt;\n{text}&lt;|end|&gt;\n
/// &lt;|assistant|&gt;\n{text or &lt;tool_call&gt;{json}&lt;/tool_call&gt;}&lt;|end|&gt;\n
/// &lt;|tool|&gt;\n{result json}&lt;|end|&gt;\n
/// &lt;|assistant|&gt;\n
/// </code>
/// The markers are single tokens in the model's tokenizer; <see cref="End"/> after an assistant turn is the
/// EOS the model emits to stop. There is no BOS-style preamble and no padding: the context is 512 tokens.
/// </summary>
public static class CllmChatFormat
{
    public const string System = "<|system|>";
    public const string User = "<|user|>";
    public const string Assistant = "<|assistant|>";
    public const string Tool = "<|tool|>";
    public const string End = "<|end|>";
    public const string ToolCallStart = "<tool_call>";
    public const string ToolCallEnd = "</tool_call>";

    /// <summary>All markers, for declaring them as special tokens to a tokenizer trainer.</summary>
    public static IReadOnlyList<string> Markers { get; } = [System, User, Assistant, Tool, End, ToolCallStart, ToolCallEnd];

    /// <summary>
    /// Compact JSON that leaves quotes of SQL ('), &lt; and &gt; unescaped: "\u0027" would cost the model
    /// six tokens per quote and make the SQL inside a run_sql call unreadable.
    /// </summary>
    internal static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Renders a conversation. Tools, when given, are listed in the system turn (a first system turn is
    /// created if there is none). <paramref name="addGenerationPrompt"/> appends <c>&lt;|assistant|&gt;\n</c>.
    /// </summary>
    public static string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
        RenderPrompt(turns, tools, addGenerationPrompt).Text;

    /// <summary><see cref="Render"/> with the markers kept apart from message and tool text (see <see cref="ChatPrompt"/>).</summary>
    public static ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var sb = new ChatPromptBuilder();
        bool hasTools = tools is { Count: > 0 };
        if (hasTools && (turns.Count == 0 || turns[0].Role != "system"))
            AppendTurn(sb, System, b => ToolsBlock(b, tools!));
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            if (turn.Role is not ("system" or "user" or "tool" or "assistant"))
                throw new ArgumentException($"Turn {i} has role '{turn.Role}'; expected system, user, assistant or tool.", nameof(turns));
            bool withTools = turn.Role == "system" && i == 0 && hasTools;
            AppendTurn(sb, "<|" + turn.Role + "|>", b =>
            {
                if (turn.Role == "assistant")
                {
                    AssistantBody(b, turn);
                    return;
                }

                b.Content(turn.Content);
                if (withTools) ToolsBlock(turn.Content.Length == 0 ? b : b.Control("\n"), tools!);
            });
        }

        if (addGenerationPrompt) sb.Control(Assistant + "\n");
        return sb.Build();
    }

    /// <summary>
    /// One (prompt, completion) pair per assistant turn: the prompt is everything before the turn plus
    /// <c>&lt;|assistant|&gt;\n</c>, the completion is the turn's text followed by <c>&lt;|end|&gt;</c>. A tool
    /// round trip therefore gives two pairs: the call, and the answer after the result.
    /// </summary>
    public static IReadOnlyList<(string Prompt, string Completion)> RenderForTraining(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var pairs = new List<(string, string)>();
        for (int i = 0; i < turns.Count; i++)
        {
            if (turns[i].Role == "assistant")
                pairs.Add((Render(turns.Take(i).ToList(), tools, addGenerationPrompt: true), AssistantBody(turns[i]) + End));
        }

        return pairs;
    }

    /// <summary>What an assistant turn renders to between its markers: its text, then its tool call if any.</summary>
    public static string AssistantBody(ChatTurn turn) => AssistantBody(new ChatPromptBuilder(), turn).Build().Text;

    static ChatPromptBuilder AssistantBody(ChatPromptBuilder sb, ChatTurn turn) =>
        turn.ToolCall is null ? sb.Content(turn.Content)
            : sb.Content(turn.Content).Control(ToolCallStart).Content(turn.ToolCall.ToJson()).Control(ToolCallEnd);

    /// <summary>
    /// Finds <c>&lt;tool_call&gt;{json}&lt;/tool_call&gt;</c> in generated text. Lenient about text before the
    /// call, whitespace around the JSON and a missing close marker at the very end (generation cut off);
    /// strict about the JSON: one object with a non-empty string "name" and an optional "arguments" object
    /// (or a string holding one). Scalar values become string, long, double, bool or null; arrays and objects
    /// become <see cref="JsonElement"/>s. Anything else gives null; this never throws.
    /// </summary>
    public static ToolCall? ParseToolCall(string assistantText)
    {
        int start = assistantText?.IndexOf(ToolCallStart, StringComparison.Ordinal) ?? -1;
        if (start < 0) return null;
        byte[] utf8 = Encoding.UTF8.GetBytes(assistantText!.Substring(start + ToolCallStart.Length));
        try
        {
            // Read exactly one JSON value, so a "</tool_call>" inside a string argument cannot end the call early.
            var reader = new Utf8JsonReader(utf8);
            using var doc = JsonDocument.ParseValue(ref reader);
            string rest = Encoding.UTF8.GetString(utf8, (int)reader.BytesConsumed, utf8.Length - (int)reader.BytesConsumed).TrimStart();
            if (rest.Length > 0 && !rest.StartsWith(ToolCallEnd, StringComparison.Ordinal) && rest != End) return null;
            return ToToolCall(doc.RootElement);
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    private static ToolCall? ToToolCall(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) return null;
        if (!root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(name.GetString())) return null;
        if (!root.TryGetProperty("arguments", out var args)) return new ToolCall(name.GetString()!, new Dictionary<string, object?>());
        if (args.ValueKind != JsonValueKind.String) return ReadArguments(args) is { } a ? new ToolCall(name.GetString()!, a) : null;

        // OpenAI's wire format (and models trained on it) put the arguments object in a string.
        using var inner = JsonDocument.Parse(args.GetString()!);
        return ReadArguments(inner.RootElement) is { } b ? new ToolCall(name.GetString()!, b) : null;
    }

    private static Dictionary<string, object?>? ReadArguments(JsonElement args)
    {
        if (args.ValueKind != JsonValueKind.Object) return null;
        var arguments = new Dictionary<string, object?>();
        foreach (var p in args.EnumerateObject())
        {
            object? value;
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.String: value = p.Value.GetString(); break;
                // Whole numbers stay long (a ternary would widen them to double); non-finite ones cannot be written back.
                case JsonValueKind.Number when p.Value.TryGetInt64(out long l): value = l; break;
                case JsonValueKind.Number when p.Value.TryGetDouble(out double d) && double.IsFinite(d): value = d; break;
                case JsonValueKind.True or JsonValueKind.False: value = p.Value.GetBoolean(); break;
                case JsonValueKind.Null: value = null; break;
                // Arrays and objects (lists, records, nested values) stay JSON for the caller to bind.
                case JsonValueKind.Array or JsonValueKind.Object: value = p.Value.Clone(); break;
                default: return null;
            }

            if (!arguments.TryAdd(p.Name, value)) return null; // a duplicate name is ambiguous
        }

        return arguments;
    }

    private static void AppendTurn(ChatPromptBuilder sb, string marker, Action<ChatPromptBuilder> content)
    {
        sb.Control(marker + "\n");
        content(sb);
        sb.Control(End + "\n");
    }

    /// <summary>One short line per tool: <c>name: description {"param":"type"}</c> (the application's text: content).</summary>
    private static void ToolsBlock(ChatPromptBuilder sb, IReadOnlyList<ToolDefinition> tools)
    {
        sb.Control("Tools:\n");
        for (int i = 0; i < tools.Count; i++)
            sb.Content((i > 0 ? "\n" : "") + $"{tools[i].Name}: {tools[i].Description} {tools[i].CompactSchema()}");
    }
}
