using System.Text.Json;
using System.Text.Json.Nodes;
using Cllm.Text.Templates;

namespace Cllm.Text;

/// <summary>
/// A model's own chat template (tokenizer_config.json's <c>chat_template</c>), rendered the way transformers'
/// <c>apply_chat_template</c> renders it: <c>messages</c>, <c>tools</c>, <c>documents</c>,
/// <c>add_generation_prompt</c>, the special tokens and extra keyword arguments. A list of named templates uses
/// "tool_use" when tools are given and "default" otherwise. Tool calls in the output are read per family:
/// Hermes/Qwen <c>&lt;tool_call&gt;{json}&lt;/tool_call&gt;</c>, Mistral <c>[TOOL_CALLS][...]</c>, Llama-3.1
/// JSON <c>{"name": ..., "parameters": ...}</c>.
/// </summary>
public sealed class TemplateChatFormat : IChatFormat
{
    static readonly string[] s_tokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    // End-of-turn markers of the common families; those the template writes are stop texts.
    static readonly string[] s_endMarkers =
        ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>", "<｜end▁of▁sentence｜>"];

    readonly IReadOnlyDictionary<string, ChatTemplate> _templates;
    readonly ToolFamily _family;

    enum ToolFamily
    {
        None,
        Hermes,
        Mistral,
        LlamaJson,
    }

    TemplateChatFormat(IReadOnlyDictionary<string, ChatTemplate> templates, IReadOnlyDictionary<string, string> specialTokens,
        IReadOnlyList<string> stopTexts)
    {
        _templates = templates;
        SpecialTokens = specialTokens;
        StopTexts = stopTexts;
        string all = string.Concat(templates.Values.Select(t => t.Source));
        _family = all.Contains("<tool_call>", StringComparison.Ordinal) ? ToolFamily.Hermes
            : all.Contains("[TOOL_CALLS]", StringComparison.Ordinal) ? ToolFamily.Mistral
            : all.Contains("\"parameters\"", StringComparison.Ordinal) && all.Contains("<|start_header_id|>", StringComparison.Ordinal)
                ? ToolFamily.LlamaJson
            : ToolFamily.None;
    }

    public string Name => "template";

    /// <summary>A copy whose templates read another clock for <c>strftime_now</c> (for reproducible prompts).</summary>
    public TemplateChatFormat WithClock(Func<DateTime> now) =>
        new(_templates.ToDictionary(p => p.Key, p => p.Value.WithClock(now), StringComparer.Ordinal), SpecialTokens, StopTexts);

    /// <summary>The special tokens the template sees (bos_token, eos_token, ...), as tokenizer_config.json names them.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    /// <summary>The template names: "default" for a single template, else the names in tokenizer_config.json.</summary>
    public IReadOnlyCollection<string> TemplateNames => (IReadOnlyCollection<string>)_templates.Keys;

    public IReadOnlyList<string> StopTexts { get; }

    public string? ToolCallStart => _family switch
    {
        ToolFamily.Hermes => "<tool_call>",
        ToolFamily.Mistral => "[TOOL_CALLS]",
        ToolFamily.LlamaJson => "{\"name\"",
        _ => null,
    };

    /// <summary>
    /// The template of a model folder (its tokenizer_config.json), or null when the folder has no template.
    /// </summary>
    /// <exception cref="InvalidDataException">tokenizer_config.json is not JSON or its chat_template is not a string or a list of {name, template}.</exception>
    /// <exception cref="TemplateException">The template is malformed (the message names the file, line and column).</exception>
    public static TemplateChatFormat? FromModelDirectory(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        string path = Path.Combine(modelDirectory, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                CommentHandling = JsonCommentHandling.Skip,
            });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }

        return root is JsonObject o ? FromTokenizerConfig(o, path) : null;
    }

    /// <summary>The template in a parsed tokenizer_config.json; null when it has no <c>chat_template</c>.</summary>
    public static TemplateChatFormat? FromTokenizerConfig(JsonObject config, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config["chat_template"] is not { } node) return null;
        var templates = new Dictionary<string, ChatTemplate>(StringComparer.Ordinal);
        if (node is JsonValue v && v.TryGetValue<string>(out var single))
        {
            templates["default"] = ChatTemplate.Parse(single, sourceName);
        }
        else if (node is JsonArray list)
        {
            foreach (var entry in list)
            {
                if (entry is not JsonObject { } named || named["name"]?.GetValueKind() != JsonValueKind.String ||
                    named["template"]?.GetValueKind() != JsonValueKind.String)
                    throw new InvalidDataException($"'{sourceName}': each chat_template entry must be {{\"name\": ..., \"template\": ...}}, got {entry?.ToJsonString()}.");
                string name = named["name"]!.GetValue<string>();
                templates[name] = ChatTemplate.Parse(named["template"]!.GetValue<string>(), $"{sourceName} ({name})");
            }
        }
        else
        {
            throw new InvalidDataException($"'{sourceName}': chat_template must be a string or a list of {{name, template}}, got {node.GetValueKind()}.");
        }

        if (templates.Count == 0) return null;
        var tokens = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var key in s_tokenKeys)
        {
            string? text = config[key] switch
            {
                JsonValue s when s.TryGetValue<string>(out var t) => t,
                JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var t) => t,
                _ => null,
            };
            if (!string.IsNullOrEmpty(text)) tokens[key] = text;
        }

        string all = string.Concat(templates.Values.Select(t => t.Source));
        var stops = new List<string>();
        if (tokens.TryGetValue("eos_token", out var eos)) stops.Add(eos);
        stops.AddRange(s_endMarkers.Where(m => all.Contains(m, StringComparison.Ordinal) && !stops.Contains(m)));
        return new TemplateChatFormat(templates, tokens, stops);
    }

    /// <summary>
    /// The prompt exactly as transformers' <c>apply_chat_template(..., tokenize=False)</c> gives it (leading BOS
    /// included when the template writes one). <paramref name="extra"/> holds further template variables.
    /// </summary>
    /// <exception cref="TemplateException">The template failed or called raise_exception (the message says why and where).</exception>
    public string RenderMessages(JsonArray messages, JsonArray? tools = null, bool addGenerationPrompt = false,
        JsonArray? documents = null, JsonObject? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var variables = new JsonObject
        {
            ["messages"] = messages.DeepClone(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["tools"] = tools?.DeepClone(),
            ["documents"] = documents?.DeepClone(),
        };
        foreach (var (key, value) in SpecialTokens) variables[key] = value;
        if (extra is not null)
        {
            foreach (var (key, value) in extra) variables[key] = value?.DeepClone();
        }

        return Pick(tools is not null).Render(variables);
    }

    ChatTemplate Pick(bool withTools)
    {
        if (withTools && _templates.TryGetValue("tool_use", out var toolUse)) return toolUse;
        if (_templates.TryGetValue("default", out var chat)) return chat;
        throw new InvalidOperationException(
            $"The model has several chat templates ({string.Join(", ", _templates.Keys)}) and none is named 'default'.");
    }

    /// <summary>The template writes the BOS where the model wants one, so its text is encoded without adding one.</summary>
    public bool RendersBos => true;

    /// <summary>
    /// Renders turns through the template: the whole prompt, the BOS the template writes included (see
    /// <see cref="RendersBos"/>), exactly as transformers renders these messages.
    /// </summary>
    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(turns);
        return RenderMessages(ToMessages(turns), tools is { Count: > 0 } ? ToTools(tools) : null, addGenerationPrompt);
    }

    /// <summary>
    /// The rendered prompt with each message's text marked as content (encoded with special-token parsing off), the
    /// rest as the template's own text. A template may transform what it prints (trim it, say): each message is
    /// looked for in order, as given or trimmed; a message the template does not print verbatim stays unmarked.
    /// </summary>
    public Cllm.Chat.ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        var text = Render(turns, tools, addGenerationPrompt);
        var builder = new Cllm.Chat.ChatPromptBuilder();
        var at = 0;
        foreach (var content in turns.Select(t => t.Content))
        {
            if (string.IsNullOrEmpty(content)) continue;
            foreach (var candidate in new[] { content, content.Trim() })
            {
                if (candidate.Length == 0) continue;
                var index = text.IndexOf(candidate, at, StringComparison.Ordinal);
                if (index < 0) continue;
                builder.Control(text[at..index]).Content(candidate);
                at = index + candidate.Length;
                break;
            }
        }
        return builder.Control(text[at..]).Build();
    }

    /// <summary>Turns as transformers' messages; calls get ids (call00001, ...) that the tool turns after them answer.</summary>
    public static JsonArray ToMessages(IReadOnlyList<ChatTurn> turns)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var messages = new JsonArray();
        var pending = new Queue<(string Id, string Name)>();
        int calls = 0;
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system" or "user":
                    messages.Add(new JsonObject { ["role"] = turn.Role, ["content"] = turn.Content });
                    break;
                case "assistant":
                    // Several calls arrive as consecutive turns (one call each); they are one message with several
                    // tool_calls, the way templates expect parallel calls.
                    bool sameMessage = turn.ToolCall is not null && turn.Content.Length == 0 && messages.Count > 0 &&
                        messages[^1] is JsonObject { } last && last["role"]?.GetValue<string>() == "assistant" && last["tool_calls"] is JsonArray;
                    var message = sameMessage ? (JsonObject)messages[^1]! : new JsonObject { ["role"] = "assistant", ["content"] = turn.Content };
                    if (turn.ToolCall is { } call)
                    {
                        string id = $"call{++calls:D5}";
                        pending.Enqueue((id, call.Name));
                        var json = JsonNode.Parse(call.ToJson())!.AsObject();
                        var entry = new JsonObject
                        {
                            ["id"] = id,
                            ["type"] = "function",
                            ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = json["arguments"]!.DeepClone() },
                        };
                        if (message["tool_calls"] is JsonArray existing) existing.Add(entry);
                        else message["tool_calls"] = new JsonArray(entry);
                    }

                    if (!sameMessage) messages.Add(message);
                    break;
                case "tool":
                    var result = new JsonObject { ["role"] = "tool", ["content"] = turn.Content };
                    if (pending.TryDequeue(out var answered))
                    {
                        result["tool_call_id"] = answered.Id;
                        result["name"] = answered.Name;
                    }

                    messages.Add(result);
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        return messages;
    }

    /// <summary>Tool definitions as transformers passes them: <c>{"type": "function", "function": {name, description, parameters}}</c>.</summary>
    public static JsonArray ToTools(IReadOnlyList<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        return new JsonArray(tools.Select(t => (JsonNode?)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = t.Name,
                ["description"] = t.Description,
                ["parameters"] = JsonNode.Parse(t.ParametersJsonSchema()),
            },
        }).ToArray());
    }

    public string ForcedToolCallPrefix(string? toolName)
    {
        string named(string argumentsKey) => toolName is null ? "" : "{\"name\": " + ChatFormatText.JsonString(toolName) + ", \"" + argumentsKey + "\": ";
        return _family switch
        {
            ToolFamily.Hermes => "<tool_call>\n" + named("arguments"),
            ToolFamily.Mistral => "[TOOL_CALLS][" + named("arguments"),
            ToolFamily.LlamaJson => toolName is null ? "{\"name\": " : named("parameters"),
            _ => "",
        };
    }

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        return _family switch
        {
            ToolFamily.Hermes => ChatFormatText.ParseTaggedCalls(text, "<tool_call>"),
            ToolFamily.Mistral => ParseJsonCalls(text, "[TOOL_CALLS]"),
            ToolFamily.LlamaJson => ParseJsonCalls(text, text.Contains("<|python_tag|>", StringComparison.Ordinal) ? "<|python_tag|>" : null),
            _ => null,
        };
    }

    // Mistral: [TOOL_CALLS] then a JSON array of {"name", "arguments"}; Llama-3.1: one {"name", "parameters"} object
    // (or several separated by ';'). Each call is checked by the shared call reader.
    static IReadOnlyList<ToolCall>? ParseJsonCalls(string text, string? marker)
    {
        int at = marker is null ? text.IndexOf('{') : text.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return null;
        string body = marker is null ? text[at..] : text[(at + marker.Length)..];
        foreach (var end in s_endMarkers) body = body.Replace(end, "", StringComparison.Ordinal);
        body = body.Trim();
        try
        {
            var parsed = new List<JsonNode?>();
            if (body.StartsWith('['))
            {
                parsed.AddRange(JsonNode.Parse(body)!.AsArray());
            }
            else
            {
                foreach (var part in body.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    parsed.Add(JsonNode.Parse(part));
            }

            var calls = new List<ToolCall>();
            foreach (var node in parsed)
            {
                if (node is not JsonObject o) return null;
                var arguments = o["arguments"] ?? o["parameters"];
                var normal = new JsonObject { ["name"] = o["name"]?.DeepClone(), ["arguments"] = arguments?.DeepClone() ?? new JsonObject() };
                if (CllmChatFormat.ParseToolCall(CllmChatFormat.ToolCallStart + normal.ToJsonString()) is not { } call) return null;
                calls.Add(call);
            }

            return calls.Count > 0 ? calls : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}
