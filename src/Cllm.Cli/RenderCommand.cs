using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Cllm.Model;
using Cllm.Text;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm render</c>: the prompt text a conversation becomes, for debugging prompts. A folder with a
/// <c>chat_template</c> is rendered by it exactly as transformers' <c>apply_chat_template(tokenize=False)</c>
/// renders it, the BOS the template writes included (the engine encodes this very text, adding nothing); with
/// <c>--format</c>, or without a template, by the built-in format, which leaves the BOS to the tokenizer.
/// </summary>
static class RenderCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var messages = new Option<string>("--messages")
        {
            Description = "JSON file: an array of messages {\"role\", \"content\"} (assistant \"tool_calls\" and tool \"tool_call_id\"/\"name\" as transformers takes them).",
            Required = true,
        };
        var tools = new Option<string?>("--tools") { Description = "JSON file: an array of tools, {\"type\": \"function\", \"function\": {name, description, parameters}}." };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "End with the start of an assistant turn." };
        var format = new Option<string?>("--format") { Description = "A built-in format instead of the model's template: " +
            string.Join(", ", ChatFormats.All.Select(f => f.Name)) + "." };
        var command = new Command("render", "Print the prompt text a conversation becomes, exactly as the engine sees it.")
        {
            model, messages, tools, generationPrompt, format,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            string dir = parse.GetValue(model)!;
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--model: folder '{dir}' does not exist.");
            var conversation = ReadArray(parse.GetValue(messages)!, "--messages");
            var offered = parse.GetValue(tools) is { } toolsPath ? WrapTools(ReadArray(toolsPath, "--tools")) : null;
            bool addPrompt = parse.GetValue(generationPrompt);
            string? named = parse.GetValue(format);

            var template = named is null ? TemplateChatFormat.FromModelDirectory(dir) : null;
            if (template is not null)
            {
                Console.Out.Write(template.RenderMessages(conversation, offered, addPrompt));
                return 0;
            }

            IChatFormat chosen = named is not null ? ChatFormats.FromName(named) : DetectWithoutTemplate(dir);
            Console.Out.Write(chosen.Render(ToTurns(conversation), offered is null ? null : ToDefinitions(offered), addPrompt));
            return 0;
        }));
        return command;
    }

    static IChatFormat DetectWithoutTemplate(string dir)
    {
        string config = Path.Combine(dir, "config.json");
        if (!File.Exists(config))
            throw new InvalidDataException($"'{dir}' has no chat_template in tokenizer_config.json and no config.json to tell the " +
                $"family by; name a format with --format ({string.Join(", ", ChatFormats.All.Select(f => f.Name))}).");
        return ChatFormats.Detect(dir, ModelConfig.Load(config));
    }

    static JsonArray ReadArray(string path, string option)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{option}: file '{path}' does not exist.", path);
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonArray
                ?? throw new InvalidDataException($"{option}: '{path}' must hold a JSON array.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{option}: '{path}' is not valid JSON: {e.Message}", e);
        }
    }

    // Bare function objects are accepted too and wrapped as transformers wraps them.
    static JsonArray WrapTools(JsonArray tools) => new(tools.Select(t => (JsonNode?)(t is JsonObject o && o["function"] is null
        ? new JsonObject { ["type"] = "function", ["function"] = o.DeepClone() }
        : t?.DeepClone())).ToArray());

    // For the built-in formats: one call per assistant turn (as they write them), text content only.
    static List<ChatTurn> ToTurns(JsonArray messages)
    {
        var turns = new List<ChatTurn>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject m || m["role"]?.GetValueKind() != JsonValueKind.String)
                throw new InvalidDataException($"--messages: message {i} must be an object with a string \"role\".");
            string role = m["role"]!.GetValue<string>();
            string content = m["content"] is JsonValue v && v.TryGetValue<string>(out var text) ? text : "";
            var calls = (m["tool_calls"] as JsonArray ?? []).Select(c => c?["function"] ?? c).ToList();
            if (calls.Count == 0)
            {
                turns.Add(new ChatTurn(role, content));
                continue;
            }

            for (int k = 0; k < calls.Count; k++)
            {
                var call = calls[k]!;
                var arguments = call["arguments"] is JsonValue s && s.TryGetValue<string>(out var raw) ? JsonNode.Parse(raw) : call["arguments"];
                var values = (arguments as JsonObject ?? []).ToDictionary(p => p.Key, p => Scalar(p.Value));
                turns.Add(new ChatTurn(role, k == 0 ? content : "", new ToolCall(call["name"]?.GetValue<string>() ?? "", values)));
            }
        }

        return turns;
    }

    static object? Scalar(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        _ => node.ToJsonString(),
    };

    static List<ToolDefinition> ToDefinitions(JsonArray tools) => [.. tools.Select(t => t?["function"]).OfType<JsonObject>().Select(f =>
    {
        var parameters = f["parameters"] as JsonObject;
        var required = (parameters?["required"] as JsonArray ?? []).Select(r => r?.GetValue<string>()).ToHashSet();
        var properties = (parameters?["properties"] as JsonObject ?? []).Select(p => new ToolParameter(p.Key,
            p.Value?["type"]?.GetValue<string>() ?? "string", p.Value?["description"]?.GetValue<string>() ?? "", required.Contains(p.Key)));
        return new ToolDefinition(f["name"]?.GetValue<string>() ?? "", f["description"]?.GetValue<string>() ?? "", [.. properties]);
    })];
}
