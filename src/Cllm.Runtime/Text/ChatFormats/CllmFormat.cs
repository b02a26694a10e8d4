using Cllm.Chat;

namespace Cllm.Text;

/// <summary>The default model's format: exactly <see cref="CllmChatFormat"/>, the code that rendered its training data.</summary>
public sealed class CllmFormat : IChatFormat
{
    public string Name => "cllm";

    // <|end|> ends a turn; a role marker in generated text means the model is starting a new turn, which
    // is never part of the answer (a weak model does this instead of ending), so it stops too.
    public IReadOnlyList<string> StopTexts { get; } =
        [CllmChatFormat.End, CllmChatFormat.User, CllmChatFormat.Assistant, CllmChatFormat.System, CllmChatFormat.Tool];

    public string? ToolCallStart => CllmChatFormat.ToolCallStart;

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
        CllmChatFormat.RenderPrompt(turns, tools, addGenerationPrompt);

    // The training data has no text before a call and compact JSON, so the prefix is what the model wrote itself.
    // It ends after the name's '","' (one token in the default vocabulary): a prefix cut inside a token the
    // model always saw whole (such as '":{"') leaves it continuing from a split it never saw.
    public string ForcedToolCallPrefix(string? toolName) =>
        CllmChatFormat.ToolCallStart + (toolName is null ? "" : "{\"name\":" + ChatFormatText.JsonString(toolName) + ",\"");

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => ChatFormatText.ParseTaggedCalls(text, CllmChatFormat.ToolCallStart);
}
