using System.Text;

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

    public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        int leading = turns.TakeWhile(t => t.Role == "system").Count();
        string system = string.Join("\n", turns.Take(leading).Select(t => t.Content));
        var sb = new StringBuilder(system.Length > 0 ? system : DefaultSystem).Append(' ');
        for (int i = leading; i < turns.Count; i++)
        {
            var turn = turns[i];
            switch (turn.Role)
            {
                case "system" or "user":
                    sb.Append("USER: ").Append(turn.Content).Append(' ');
                    break;
                case "assistant":
                    sb.Append("ASSISTANT: ").Append(turn.Content).Append("</s>");
                    break;
                default:
                    throw ChatFormatText.UnknownRole(i, turn.Role);
            }
        }

        if (addGenerationPrompt) sb.Append("ASSISTANT:");
        return sb.ToString();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;
}
