using Cllm.Text;
using System.Text;
using System.Text.Json;

namespace Cllm.Training.Data;

/// <summary>
/// One (prompt, completion) pair. <see cref="Answer"/> is what an evaluation compares against: the
/// conversation's gold answer for its first assistant turn, and the turn's own text for later ones (the
/// sentence after a tool result).
/// </summary>
public sealed record TrainingExample(string Domain, string Prompt, string Completion, string Answer);

/// <summary>An evaluation prompt: the first assistant turn's prompt and the conversation's gold answer.</summary>
public sealed record EvalPrompt(string Domain, string Prompt, string Answer);

/// <summary>
/// Writes generated conversations as the files training and evaluation read: examples as JSON lines,
/// evaluation prompts as JSON lines, and plain rendered text for training the SentencePiece tokenizer.
/// </summary>
public static class CorpusWriter
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    public static IEnumerable<TrainingExample> ToExamples(Conversation conversation)
    {
        var pairs = CllmChatFormat.RenderForTraining(conversation.Turns, conversation.Tools);
        for (int i = 0; i < pairs.Count; i++)
        {
            var (prompt, completion) = pairs[i];
            yield return new TrainingExample(conversation.Domain, prompt, completion, i == 0 ? conversation.Answer : completion[..^CllmChatFormat.End.Length]);
        }
    }

    /// <summary>One <c>{"domain","prompt","completion","answer"}</c> line per example; returns the number of lines.</summary>
    public static int WriteExamples(string path, IEnumerable<Conversation> conversations) =>
        WriteLines(path, conversations.SelectMany(ToExamples).Select(e => JsonSerializer.Serialize(
            new Dictionary<string, string> { ["domain"] = e.Domain, ["prompt"] = e.Prompt, ["completion"] = e.Completion, ["answer"] = e.Answer }, CllmChatFormat.Json)));

    /// <summary>One <c>{"domain","prompt","answer"}</c> line per conversation (its first assistant turn); returns the number of lines.</summary>
    public static int WritePrompts(string path, IEnumerable<Conversation> conversations) =>
        WriteLines(path, conversations.Select(ToExamples).Select(e => e.First()).Select(e => JsonSerializer.Serialize(
            new Dictionary<string, string> { ["domain"] = e.Domain, ["prompt"] = e.Prompt, ["answer"] = e.Answer }, CllmChatFormat.Json)));

    /// <summary>
    /// Whole rendered conversations, one after another, for the tokenizer trainer (which reads lines).
    /// The markers should be declared to it as user-defined symbols (<see cref="CllmChatFormat.Markers"/>).
    /// </summary>
    public static int WriteTokenizerText(string path, IEnumerable<Conversation> conversations) =>
        WriteLines(path, conversations.Select(c => CllmChatFormat.Render(c.Turns, c.Tools, addGenerationPrompt: false).TrimEnd('\n')));

    public static IEnumerable<TrainingExample> ReadExamples(string path) =>
        ReadObjects(path, ["domain", "prompt", "completion", "answer"]).Select(f => new TrainingExample(f[0], f[1], f[2], f[3]));

    public static IEnumerable<EvalPrompt> ReadPrompts(string path) =>
        ReadObjects(path, ["domain", "prompt", "answer"]).Select(f => new EvalPrompt(f[0], f[1], f[2]));

    private static int WriteLines(string path, IEnumerable<string> lines)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        int count = 0;
        using var writer = new StreamWriter(path, append: false, Utf8NoBom);
        writer.NewLine = "\n";
        foreach (var line in lines)
        {
            writer.WriteLine(line);
            count++;
        }

        return count;
    }

    /// <summary>Reads JSON lines whose objects must hold the given string fields; blank lines are skipped.</summary>
    private static IEnumerable<string[]> ReadObjects(string path, string[] fields)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string[]? values = null;
            string problem;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                string? missing = root.ValueKind != JsonValueKind.Object ? "" :
                    fields.FirstOrDefault(f => !root.TryGetProperty(f, out var v) || v.ValueKind != JsonValueKind.String);
                problem = missing is null ? "" : missing.Length == 0 ? "not a JSON object" : $"no string field \"{missing}\"";
                if (missing is null) values = fields.Select(f => root.GetProperty(f).GetString()!).ToArray();
            }
            catch (JsonException e)
            {
                problem = "invalid JSON: " + e.Message;
            }

            yield return values ?? throw new InvalidDataException($"{path}, line {lineNumber}: {problem}.");
        }
    }
}
