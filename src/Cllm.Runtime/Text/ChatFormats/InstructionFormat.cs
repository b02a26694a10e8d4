using Cllm.Chat;

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

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        var sb = new ChatPromptBuilder();
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system":
                    sb.Content(turn.Content).Control("\n\n");
                    break;
                case "user":
                    sb.Control("### Instruction:\n").Content(turn.Content).Control("\n");
                    break;
                case "assistant":
                    sb.Control("### Response:\n").Content(turn.Content).Control("\n");
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Control("### Response:\n");
        return sb.Build();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;
}
