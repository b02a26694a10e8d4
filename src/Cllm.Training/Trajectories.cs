using System.Text.Json;
using System.Text.Json.Serialization;
using Cllm.Decoding;
using Cllm.Model;
using static TorchSharp.torch;
using Transformer = Cllm.Model.Transformer;

namespace Cllm.Training;

/// <summary>
/// One Jacobi trajectory of one block: the context before the block (prompt + earlier fixed points), the
/// block's states y(0) .. y(k) in the order Jacobi iteration visited them (augmented states interleaved),
/// and the fixed point y* = y(k), which equals greedy AR decoding's n tokens.
/// </summary>
public sealed record Trajectory(
    [property: JsonPropertyName("prompt_index")] int PromptIndex,
    [property: JsonPropertyName("block_index")] int BlockIndex,
    [property: JsonPropertyName("prompt")] int[] Prompt,
    [property: JsonPropertyName("states")] int[][] States,
    [property: JsonPropertyName("fixed_point")] int[] FixedPoint);

/// <summary>Collects Jacobi trajectories block after block, with the CLLM reference's augmentation and cleaning.</summary>
public static class TrajectoryCollector
{
    /// <summary>A fixed point that repeats one token this many times in a row is dropped: collapse into
    /// repetition was the main failure the reference's users reported.</summary>
    public const int RepetitionLimit = 10;

    /// <summary>
    /// Decodes <paramref name="prompt"/> one n-token block at a time. Each block starts from its known first
    /// token and n-1 tokens drawn from the context, and is iterated (the whole block each pass) until it no
    /// longer changes; the next block's first token is the argmax after the fixed point. Stops after the
    /// block holding an EOS id, after <paramref name="maxNewTokens"/>, or when the context is full.
    /// </summary>
    public static List<Trajectory> Collect(Transformer model, KvCache cache, int promptIndex, IReadOnlyList<int> prompt,
        int blockSize, int maxNewTokens, IReadOnlyCollection<int> eosIds, bool augment, Random random)
    {
        var result = new List<Trajectory>();
        var context = prompt.ToList();
        cache.Clear();
        var first = Decoder.Pass(model, cache, context.ToArray(), 0, lastOnly: true, l => Decoder.Argmax(l)[0]);
        var generated = 0;
        for (var blockIndex = 0; generated < maxNewTokens && cache.Length + blockSize <= cache.Capacity; blockIndex++)
        {
            var start = cache.Length;
            var y = new int[blockSize];
            y[0] = first;
            for (var i = 1; i < blockSize; i++) y[i] = context[random.Next(context.Count)];
            var states = new List<int[]> { y };
            while (true)
            {
                var output = Decoder.Pass(model, cache, y, start, lastOnly: false, Decoder.Argmax);
                var next = new int[blockSize];
                next[0] = y[0];
                Array.Copy(output, 0, next, 1, blockSize - 1);
                if (next.AsSpan().SequenceEqual(y))
                {
                    first = output[blockSize - 1]; // the cache now holds the fixed point: keep it
                    break;
                }
                cache.Truncate(start);
                y = next;
                states.Add(y);
                if (states.Count > blockSize + 1)
                    throw new InvalidOperationException("Jacobi iteration failed to converge within n passes; the model is not deterministic.");
            }
            var trajectory = new Trajectory(promptIndex, blockIndex, context.ToArray(), states.ToArray(), y);
            if (augment) trajectory = Augment(trajectory, random);
            if (!Repeats(y)) result.Add(trajectory);
            context.AddRange(y);
            generated += blockSize;
            if (y.Any(eosIds.Contains)) break;
        }
        return result;
    }

    /// <summary>
    /// After each intermediate state, adds a copy in which about half of the wrong tokens after the first
    /// wrong one are replaced by the fixed point's: states nearer the fixed point than iteration reached.
    /// </summary>
    public static Trajectory Augment(Trajectory trajectory, Random random)
    {
        var fixedPoint = trajectory.FixedPoint;
        var states = new List<int[]>();
        foreach (var state in trajectory.States[..^1])
        {
            states.Add(state);
            var wrong = Enumerable.Range(0, state.Length).Where(i => state[i] != fixedPoint[i]).ToArray();
            if (wrong.Length < 2) continue;
            var copy = (int[])state.Clone();
            foreach (var i in wrong.Skip(1)) // never the first wrong token
                if (random.Next(2) == 0) copy[i] = fixedPoint[i];
            if (!copy.AsSpan().SequenceEqual(state)) states.Add(copy);
        }
        states.Add(fixedPoint);
        return trajectory with { States = states.ToArray() };
    }

    public static bool Repeats(IReadOnlyList<int> tokens)
    {
        var run = 1;
        for (var i = 1; i < tokens.Count; i++)
        {
            run = tokens[i] == tokens[i - 1] ? run + 1 : 1;
            if (run >= RepetitionLimit) return true;
        }
        return false;
    }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static string ToJsonLine(Trajectory trajectory) => JsonSerializer.Serialize(trajectory, Json);

    /// <summary>Reads a trajectories file (group_end lines skipped, see <see cref="TrajectoryFile"/>); a malformed
    /// line is an error naming the file and line.</summary>
    public static IEnumerable<Trajectory> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Trajectories file not found: {path}", path);
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Trim().Length == 0 || TrajectoryFile.IsGroupEnd(line)) continue;
            Trajectory? t;
            try { t = JsonSerializer.Deserialize<Trajectory>(line, Json); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{number}: not a trajectory ({e.Message}).", e); }
            if (t is null || t.Prompt is null || t.States is not { Length: > 0 } || t.FixedPoint is null
                || t.States.Any(s => s is null || s.Length != t.FixedPoint.Length) || !t.States[^1].SequenceEqual(t.FixedPoint))
                throw new InvalidDataException($"{path}:{number}: a trajectory needs prompt, states of the fixed point's length, and must end at its fixed_point.");
            yield return t;
        }
    }
}
