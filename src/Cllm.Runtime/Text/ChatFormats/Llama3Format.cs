using Cllm.Chat;

namespace Cllm.Text;

/// <summary>
/// LLaMA-3 instruct: <c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n{content}&lt;|eot_id|&gt;</c>; the
/// tokenizer adds <c>&lt;|begin_of_text|&gt;</c>. No tool calling (LLaMA-3.1's JSON convention is not implemented).
/// </summary>
public sealed class Llama3Format : IChatFormat
{
    public string Name => "llama3";

    public IReadOnlyList<string> StopTexts { get; } = ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"];

    public string? ToolCallStart => null;

    public ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt)
    {
        ChatFormatText.RejectTools(Name, turns, tools);
        var sb = new ChatPromptBuilder();
        for (int i = 0; i < turns.Count; i++)
        {
            if (turns[i].Role is not ("system" or "user" or "assistant")) throw ChatFormatText.UnknownRole(i, turns[i].Role);
            Header(sb, turns[i].Role).Content(turns[i].Content.Trim()).Control("<|eot_id|>");
        }

        if (addGenerationPrompt) Header(sb, "assistant");
        return sb.Build();
    }

    public string ForcedToolCallPrefix(string? toolName) => throw ChatFormatText.NoTools(Name);

    public IReadOnlyList<ToolCall>? ParseToolCalls(string text) => null;

    static ChatPromptBuilder Header(ChatPromptBuilder sb, string role) => sb.Control("<|start_header_id|>" + role + "<|end_header_id|>\n\n");
}
