using System.Text.Json.Nodes;
using Cllm.Chat;

namespace Cllm.Text;

/// <summary>
/// ChatML (Qwen2 and many fine-tunes): <c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;\n</c>. Tools follow the
/// Hermes convention Qwen2 was trained on: JSON signatures inside <c>&lt;tools&gt;</c> in the system turn,
/// calls as <c>&lt;tool_call&gt;\n{"name":..,"arguments":{..}}\n&lt;/tool_call&gt;</c>, results in a user turn
/// inside <c>&lt;tool_response&gt;</c>.
/// </summary>
public sealed class ChatMlFormat : IChatFormat
{
    const string Start = "<|im_start|>", End = "<|im_end|>";

    public string Name => "chatml";

    public IReadOnlyList<string> StopTexts { get; } = [End, "<|endoftext|>"];

    public string? ToolCallStart => "<tool_call>";

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var sb = new ChatPromptBuilder();
        bool hasTools = tools is { Count: > 0 };
        if (hasTools && (turns.Count == 0 || turns[0].Role != "system"))
            Append(sb, "system", b => ToolsBlock(b, tools!));
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system":
                    Append(sb, "system", b =>
                    {
                        b.Content(turn.Content);
                        if (i == 0 && hasTools) ToolsBlock(b.Control("\n\n"), tools!);
                    });
                    break;
                case "user":
                    Append(sb, "user", b => b.Content(turn.Content));
                    break;
                case "assistant":
                    Append(sb, "assistant", b =>
                    {
                        b.Content(turn.Content);
                        if (turn.ToolCall is not null)
                            b.Control((turn.Content.Length > 0 ? "\n" : "") + "<tool_call>\n").Content(turn.ToolCall.ToJson()).Control("\n</tool_call>");
                    });
                    break;
                case "tool":
                    Append(sb, "user", b => b.Control("<tool_response>\n").Content(turn.Content).Control("\n</tool_response>"));
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Control(Start + "assistant\n");
        return sb.Build();
    }

    public string ForcedToolCallPrefix(string? toolName) =>
        "<tool_call>\n" + (toolName is null ? "" : "{\"name\": " + ChatFormatText.JsonString(toolName) + ", \"");

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => ChatFormatText.ParseTaggedCalls(text, "<tool_call>");

    static void Append(ChatPromptBuilder sb, string role, Action<ChatPromptBuilder> content)
    {
        sb.Control(Start + role + "\n");
        content(sb);
        sb.Control(End + "\n");
    }

    // Tool signatures are the application's text, not the format's: content, so a marker in a description stays text.
    static void ToolsBlock(ChatPromptBuilder sb, IReadOnlyList<ToolDefinition> tools)
    {
        sb.Control("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        foreach (var t in tools)
        {
            var function = new JsonObject { ["name"] = t.Name, ["description"] = t.Description, ["parameters"] = JsonNode.Parse(t.ParametersJsonSchema()) };
            sb.Control("\n").Content(new JsonObject { ["type"] = "function", ["function"] = function }.ToJsonString(CllmChatFormat.Json));
        }

        sb.Control("\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
    }
}
