using Cllm.Chat;

namespace Cllm.Text;

/// <summary>
/// How a model family lays out a conversation: the prompt text for a list of turns, what ends the
/// assistant's turn, and (for families that have one) how tool calls look. The built-in formats leave out the
/// leading BOS (the tokenizer adds it when the model wants one); a format whose <see cref="RendersBos"/> is true
/// writes it itself, as a model's own template does, and its text is encoded without adding another.
/// </summary>
public interface IChatFormat
{
    /// <summary>Short name, as <see cref="ChatFormats.FromName"/> takes it: "cllm", "chatml", "llama2", ...</summary>
    string Name { get; }

    /// <summary>
    /// Renders the turns (roles system, user, assistant, tool). Tools, when given, are described the way the
    /// family expects. <paramref name="addGenerationPrompt"/> appends the start of an assistant turn. The
    /// format's own markers are control segments; message, tool and result text are content segments, which
    /// <see cref="ChatPrompt.Encode"/> never turns into control tokens.
    /// </summary>
    /// <exception cref="NotSupportedException">Tools or tool turns for a family without tool calling.</exception>
    ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt);

    /// <summary><see cref="RenderPrompt"/> as one string.</summary>
    string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
        RenderPrompt(turns, tools, addGenerationPrompt).Text;

    /// <summary>
    /// Texts that end an assistant turn. Those that are single tokens in the model's vocabulary are matched
    /// by id; the others on the decoded text.
    /// </summary>
    IReadOnlyList<string> StopTexts { get; }

    /// <summary>
    /// True when <see cref="Render"/> writes the model's BOS itself (a model's own chat template, as transformers
    /// renders it): the prompt is then encoded without adding special tokens, as <c>apply_chat_template</c> does.
    /// </summary>
    bool RendersBos => false;

    /// <summary>The marker a tool call starts with in generated text; null when the family has no tool calling.</summary>
    string? ToolCallStart { get; }

    /// <summary>
    /// Text to put after the generation prompt so the model must call a tool (any, or the one named): the
    /// assistant turn then continues from inside the call.
    /// </summary>
    string ForcedToolCallPrefix(string? toolName);

    /// <summary>
    /// The calls in generated text that starts at <see cref="ToolCallStart"/>; null when any of it is
    /// malformed (the caller then keeps it as text). Never throws.
    /// </summary>
    IReadOnlyList<ToolCall>? ParseToolCalls(string text);
}
