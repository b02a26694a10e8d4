using Cllm.Text;
using System.Text.RegularExpressions;
using Cllm.Training.Data;

namespace Cllm.Training;

/// <summary>Exact-match scoring of the synthetic tasks: the SQL text, the tool call, the final number.</summary>
public static partial class Evaluation
{
    public static bool IsCorrect(string domain, string completion, string answer)
    {
        var text = completion.Replace(CllmChatFormat.End, "", StringComparison.Ordinal).Trim();
        return domain switch
        {
            "sql" => Normalize(text) == Normalize(answer),
            "tool" => CllmChatFormat.ParseToolCall(text) is { } call
                      && CllmChatFormat.ParseToolCall(CllmChatFormat.ToolCallStart + answer + CllmChatFormat.ToolCallEnd) is { } gold
                      && call.Equals(gold),
            "math" => FinalAnswer().Match(text) is { Success: true } m && m.Groups[1].Value == answer.Trim(),
            _ => text == answer.Trim(),
        };
    }

    static string Normalize(string sql) => string.Join(' ', sql.Trim().TrimEnd(';').Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    [GeneratedRegex(@"Answer:\s*(-?\d+)\s*$")]
    private static partial Regex FinalAnswer();
}
