using System.Text;
using System.Text.Json.Nodes;

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

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(turns);
        var sb = new StringBuilder();
        bool hasTools = tools is { Count: > 0 };
        if (hasTools && (turns.Count == 0 || turns[0].Role != "system"))
            Append(sb, "system", ToolsBlock(tools!));
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system":
                    Append(sb, "system", i == 0 && hasTools ? turn.Content + "\n\n" + ToolsBlock(tools!) : turn.Content);
                    break;
                case "user":
                    Append(sb, "user", turn.Content);
                    break;
                case "assistant":
                    string call = turn.ToolCall is null ? "" : (turn.Content.Length > 0 ? "\n" : "") + "<tool_call>\n" + turn.ToolCall.ToJson() + "\n</tool_call>";
                    Append(sb, "assistant", turn.Content + call);
                    break;
                case "tool":
                    Append(sb, "user", "<tool_response>\n" + turn.Content + "\n</tool_response>");
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Append(Start).Append("assistant\n");
        return sb.ToString();
    }

    public string ForcedToolCallPrefix(string? toolName) =>
        "<tool_call>\n" + (toolName is null ? "" : "{\"name\": " + ChatFormatText.JsonString(toolName) + ", \"");

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => ChatFormatText.ParseTaggedCalls(text, "<tool_call>");

    static void Append(StringBuilder sb, string role, string content) => sb.Append(Start).Append(role).Append('\n').Append(content).Append(End).Append('\n');

    static string ToolsBlock(IReadOnlyList<ToolDefinition> tools)
    {
        var sb = new StringBuilder("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        foreach (var t in tools)
        {
            var function = new JsonObject { ["name"] = t.Name, ["description"] = t.Description, ["parameters"] = JsonNode.Parse(t.ParametersJsonSchema()) };
            sb.Append('\n').Append(new JsonObject { ["type"] = "function", ["function"] = function }.ToJsonString(CllmChatFormat.Json));
        }

        return sb.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>").ToString();
    }
}
