using System.Text;
using System.Text.Json;

namespace Cllm.Training;

/// <summary>What <see cref="TrajectoryFile.Recover"/> found: the prompts whose groups are complete and what it cut off.</summary>
/// <param name="DonePrompts">Prompt indices whose whole group is in the file (also groups of zero blocks).</param>
/// <param name="Blocks">Trajectory lines kept.</param>
/// <param name="DroppedBytes">Bytes cut from the end: a group the writer did not finish.</param>
/// <param name="DroppedLines">Complete trajectory lines among them (a cut-off partial line not counted).</param>
public sealed record TrajectoryRecovery(IReadOnlySet<int> DonePrompts, long Blocks, long DroppedBytes, int DroppedLines);

/// <summary>
/// The trajectories file as <c>cllm collect</c> appends to it: the blocks of one prompt (a group) as JSON lines,
/// then a commit line <c>{"group_end":P,"blocks":N}</c>, all written with one write call and flushed. A kill at
/// any byte leaves complete groups and at most one unfinished group at the end; <see cref="Recover"/> cuts that
/// tail off so a resumed run collects the prompt again: no block lost, none duplicated. Files written before
/// commit lines existed (no group_end at all) keep their complete lines; only a cut-off last line is dropped.
/// </summary>
public static class TrajectoryFile
{
    const string GroupEnd = "group_end";
    static readonly byte[] GroupEndPrefix = Encoding.UTF8.GetBytes("{\"" + GroupEnd + "\":");

    /// <summary>The text of one group: its trajectory lines and the commit line.</summary>
    public static string GroupText(int promptIndex, IReadOnlyList<Trajectory> group)
    {
        var text = new StringBuilder();
        foreach (var t in group)
        {
            if (t.PromptIndex != promptIndex)
                throw new ArgumentException($"trajectory of prompt {t.PromptIndex} in the group of prompt {promptIndex}.", nameof(group));
            text.Append(TrajectoryCollector.ToJsonLine(t)).Append('\n');
        }
        text.Append("{\"").Append(GroupEnd).Append("\":").Append(promptIndex).Append(",\"blocks\":").Append(group.Count).Append("}\n");
        return text.ToString();
    }

    /// <summary>Appends one group as a single write and (unless told not to) flushes it to disk, so a power cut
    /// after the call cannot lose it either.</summary>
    public static void AppendGroup(string path, int promptIndex, IReadOnlyList<Trajectory> group, bool flushToDisk = true)
    {
        var bytes = Encoding.UTF8.GetBytes(GroupText(promptIndex, group));
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
        stream.Write(bytes);
        stream.Flush(flushToDisk);
    }

    /// <summary>Whether a line is a group's commit line rather than a trajectory.</summary>
    public static bool IsGroupEnd(string line) => line.StartsWith("{\"" + GroupEnd + "\":", StringComparison.Ordinal);

    /// <summary>
    /// Reads <paramref name="path"/> (a missing file is empty), cuts off an unfinished last group or a cut-off last
    /// line, and says which prompts are done. A damaged line in the middle is an error naming the file and line.
    /// </summary>
    public static TrajectoryRecovery Recover(string path)
    {
        if (!File.Exists(path)) return new TrajectoryRecovery(new HashSet<int>(), 0, 0, 0);
        var bytes = File.ReadAllBytes(path);
        var done = new HashSet<int>();
        var pending = new List<(int Prompt, long End)>();
        long committedEnd = 0, kept = 0;
        bool sawGroupEnd = false;
        int number = 0;
        long start = 0;
        while (start < bytes.Length)
        {
            int newline = Array.IndexOf(bytes, (byte)'\n', (int)start);
            if (newline < 0) break; // a cut-off last line
            number++;
            var line = bytes.AsSpan((int)start, newline - (int)start);
            long end = newline + 1;
            if (line.Trim((byte)' ').Length == 0)
            {
                if (!sawGroupEnd || pending.Count == 0) committedEnd = end;
            }
            else if (line.StartsWith(GroupEndPrefix))
            {
                var (prompt, blocks) = ParseGroupEnd(line, path, number);
                int legacy = pending.Count - blocks;
                if (legacy < 0 || (legacy > 0 && sawGroupEnd) || pending.Skip(legacy).Any(p => p.Prompt != prompt))
                    throw new InvalidDataException(
                        $"{path}:{number}: group_end for prompt {prompt} says {blocks} blocks, but the {pending.Count} trajectory lines " +
                        "since the previous group do not match it. The file was edited or concatenated mid-group; " +
                        "remove the damaged group by hand (or delete the file) and collect again.");
                foreach (var p in pending) done.Add(p.Prompt); // legacy lines before the first group_end count as done
                kept += pending.Count;
                pending.Clear();
                done.Add(prompt);
                sawGroupEnd = true;
                committedEnd = end;
            }
            else
            {
                Trajectory? t = null;
                try { t = JsonSerializer.Deserialize<Trajectory>(line); }
                catch (JsonException) { }
                if (t is null || t.Prompt is null || t.States is null || t.FixedPoint is null)
                {
                    // Only the last line may be damaged (a kill mid-write); anything earlier is real corruption.
                    if (end < bytes.Length)
                        throw new InvalidDataException($"{path}:{number}: not a trajectory line; the file is damaged in the middle. " +
                                                       "Remove the line (and the rest of its group) or delete the file and collect again.");
                    break;
                }
                pending.Add((t.PromptIndex, end));
                if (!sawGroupEnd)
                {
                    // Until a group_end is seen the file may be in the old format, where every whole line counts.
                    committedEnd = end;
                }
            }
            start = end;
        }

        int droppedLines;
        if (sawGroupEnd)
        {
            droppedLines = pending.Count;
        }
        else
        {
            // Old format: every whole line is kept (its group may be short; nothing marks that).
            foreach (var p in pending) done.Add(p.Prompt);
            kept += pending.Count;
            droppedLines = 0;
        }

        long dropped = bytes.Length - committedEnd;
        if (dropped > 0)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
            stream.SetLength(committedEnd);
        }
        return new TrajectoryRecovery(done, kept, dropped, droppedLines);
    }

    static (int Prompt, int Blocks) ParseGroupEnd(ReadOnlySpan<byte> line, string path, int number)
    {
        try
        {
            using var doc = JsonDocument.Parse(line.ToArray());
            var root = doc.RootElement;
            if (root.TryGetProperty(GroupEnd, out var p) && p.TryGetInt32(out int prompt) && prompt >= 0
                && root.TryGetProperty("blocks", out var b) && b.TryGetInt32(out int blocks) && blocks >= 0)
                return (prompt, blocks);
        }
        catch (JsonException) { }
        throw new InvalidDataException($"{path}:{number}: a group_end line needs a prompt index and a block count >= 0: " +
                                       $"{Encoding.UTF8.GetString(line)}");
    }
}
