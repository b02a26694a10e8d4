using Cllm.Chat;

namespace Cllm.Text;

/// <summary>Vicuna v1.1: <c>{system} USER: {user} ASSISTANT: {answer}&lt;/s&gt;USER: ...</c>. No tool calling.</summary>
public sealed class VicunaFormat : IChatFormat
{
    public const string DefaultSystem =
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

    public string Name => "vicuna";

    // A model that forgets its EOS starts the next user turn itself: that ends the answer too.
    public IReadOnlyList<string> StopTexts { get; } = ["</s>", "USER:"];

    public string? ToolCallStart => null;

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        int leading = turns.TakeWhile(t => t.Role == "system").Count();
        string system = string.Join("\n", turns.Take(leading).Select(t => t.Content));
        var sb = new ChatPromptBuilder();
        if (system.Length > 0) sb.Content(system);
        else sb.Control(DefaultSystem);
        sb.Control(" ");
        for (int i = leading; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system" or "user":
                    sb.Control("USER: ").Content(turn.Content).Control(" ");
                    break;
                case "assistant":
                    sb.Control("ASSISTANT: ").Content(turn.Content).Control("</s>");
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Control("ASSISTANT:");
        return sb.Build();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;
}
