using Cllm.Chat;

namespace Cllm.Text;

/// <summary>
/// LLaMA-2 chat and Mistral instruct: <c>[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{user} [/INST] {answer} &lt;/s&gt;&lt;s&gt;[INST] ...</c>.
/// The first <c>&lt;s&gt;</c> is the tokenizer's BOS; later ones are written out. No tool calling.
/// </summary>
public sealed class Llama2Format : IChatFormat
{
    public string Name => "llama2";

    public IReadOnlyList<string> StopTexts { get; } = ["</s>"];

    public string? ToolCallStart => null;

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        var sb = new ChatPromptBuilder();
        string? system = null;
        bool first = true;
        for (int i = 0; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system":
                    system = system is null ? turn.Content : system + "\n" + turn.Content;
                    break;
                case "user":
                    if (!first) sb.Control("<s>");
                    sb.Control("[INST] ");
                    if (system is not null) sb.Control("<<SYS>>\n").Content(system).Control("\n<</SYS>>\n\n");
                    sb.Content(turn.Content.Trim()).Control(" [/INST]");
                    system = null;
                    first = false;
                    break;
                case "assistant":
                    sb.Control(" ").Content(turn.Content.Trim()).Control(" </s>");
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        // The generation prompt is "[/INST]" itself: the answer follows it directly.
        return sb.Build();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;
}
