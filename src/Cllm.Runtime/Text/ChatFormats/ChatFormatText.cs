using System.Text.Json;

namespace Cllm.Text;

/// <summary>Small pieces the chat formats share.</summary>
internal static class ChatFormatText
{
    public static string JsonString(string value) => JsonSerializer.Serialize(value, CllmChatFormat.Json);

    /// <summary>
    /// Every <c>{start}{json}{end}</c> block in <paramref name="text"/>, each parsed by the default format's
    /// parser (the same JSON shape); null if there is none or any block is malformed.
    /// </summary>
    public static IReadOnlyList<ToolCall>? ParseTaggedCalls(string text, string start)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var calls = new List<ToolCall>();
        int at = text.IndexOf(start, StringComparison.Ordinal);
        if (at < 0) return null;
        while (at >= 0)
        {
            int next = text.IndexOf(start, at + start.Length, StringComparison.Ordinal);
            string block = next < 0 ? text[at..] : text[at..next];
            if (CllmChatFormat.ParseToolCall(block) is not { } call) return null;
            calls.Add(call);
            at = next;
        }

        return calls;
    }

    public static ArgumentException UnknownRole(int index, string role) =>
        new($"Turn {index} has role '{role}'; expected system, user, assistant or tool.", "turns");

    public static NotSupportedException NoTools(string format) =>
        new($"The '{format}' chat format has no tool-calling convention; use a model whose format has one (cllm, chatml) or leave tools out.");

    public static void RejectTools(string format, IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools)
    {
        ArgumentNullException.ThrowIfNull(turns);
        if (tools is { Count: > 0 } || turns.Any(t => t.ToolCall is not null || t.Role == "tool")) throw NoTools(format);
    }
}
