using System.Text;

namespace Cllm.Text;

/// <summary>
/// "### Instruction:\n{user}\n### Response:\n{answer}": the prompt the CLLM checkpoints (and
/// DeepSeek-Coder instruct, which several of them start from) were trained with. A system text goes first.
/// No tool calling.
/// </summary>
public sealed class InstructionFormat : IChatFormat
{
    public string Name => "instruction";

    public IReadOnlyList<string> StopTexts { get; } = ["### Instruction", "<|EOT|>", "</s>"];

    public string? ToolCallStart => null;

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        var sb = new StringBuilder();
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system":
                    sb.Append(turn.Content).Append("\n\n");
                    break;
                case "user":
                    sb.Append("### Instruction:\n").Append(turn.Content).Append('\n');
                    break;
                case "assistant":
                    sb.Append("### Response:\n").Append(turn.Content).Append('\n');
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Append("### Response:\n");
        return sb.ToString();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;
}
