using Cllm.Training;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>
/// cllm collect's file killed at every byte of a group and resumed the way the command resumes: recover, then
/// append the groups of the prompts not done. Every block must end up in the file exactly once.
/// </summary>
public sealed class CollectResumeTests : IDisposable
{
    readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    // Trajectories with real structure (states ending at the fixed point), from a seeded generator.
    static List<Trajectory> Group(int prompt, int blocks, Random random) =>
        Enumerable.Range(0, blocks).Select(b =>
        {
            var fixedPoint = Enumerable.Range(0, 8).Select(_ => random.Next(4096)).ToArray();
            var states = Enumerable.Range(0, 1 + random.Next(4)).Select(_ => Enumerable.Range(0, 8).Select(_ => random.Next(4096)).ToArray())
                .Append(fixedPoint).ToArray();
            return new Trajectory(prompt, b, Enumerable.Range(0, 60 + random.Next(20)).Select(_ => random.Next(4096)).ToArray(), states, fixedPoint);
        }).ToList();

    static void Resume(string path, Dictionary<int, List<Trajectory>> groups)
    {
        var done = TrajectoryFile.Recover(path).DonePrompts;
        foreach (var (prompt, group) in groups.Where(g => !done.Contains(g.Key)))
            TrajectoryFile.AppendGroup(path, prompt, group, flushToDisk: false); // thousands of cases: no fsync each
    }

    static void AssertEveryBlockOnce(string path, Dictionary<int, List<Trajectory>> groups)
    {
        var read = TrajectoryCollector.Read(path).Select(TrajectoryCollector.ToJsonLine).ToList();
        var expected = groups.Values.SelectMany(g => g).Select(TrajectoryCollector.ToJsonLine).ToList();
        Assert.Equal(expected.Count, read.Count); // none duplicated
        Assert.Equal(expected.Order(StringComparer.Ordinal), read.Order(StringComparer.Ordinal)); // none lost
    }

    [Fact]
    public void KilledAtEveryByteOfAGroupResumesWithNoBlockLostOrDuplicated()
    {
        var random = new Random(14);
        var groups = new Dictionary<int, List<Trajectory>> { [0] = Group(0, 2, random), [1] = Group(1, 4, random) };
        var path = _folder.File("trajectories.jsonl");
        TrajectoryFile.AppendGroup(path, 0, groups[0]);
        long before = new FileInfo(path).Length;
        TrajectoryFile.AppendGroup(path, 1, groups[1]);
        var full = File.ReadAllBytes(path);
        Assert.InRange(full.Length - before, 1000, 4000); // several blocks; every offset costs a recover and a resume
        int cases = 0;
        for (long cut = before; cut <= full.Length; cut++)
        {
            File.WriteAllBytes(path, full[..(int)cut]);
            var recovery = TrajectoryFile.Recover(path);
            Assert.Equal(cut == full.Length ? [0, 1] : new[] { 0 }, recovery.DonePrompts.Order());
            Assert.Equal(cut == full.Length ? 0 : cut - before, recovery.DroppedBytes);
            Resume(path, groups);
            // Resuming rewrites exactly the lost group: the file is byte for byte the uninterrupted one.
            Assert.True(full.AsSpan().SequenceEqual(File.ReadAllBytes(path)), $"cut at {cut}");
            if (cut % 997 == 0) AssertEveryBlockOnce(path, groups);
            cases++;
        }
        Assert.Equal(full.Length - before + 1, cases);
    }

    [Fact]
    public void AGroupOfNoBlocksCountsAsDone()
    {
        var path = _folder.File("t.jsonl");
        TrajectoryFile.AppendGroup(path, 5, []);
        Assert.Equal([5], TrajectoryFile.Recover(path).DonePrompts);
        Assert.Empty(TrajectoryCollector.Read(path));
    }

    [Fact]
    public void OldFilesWithoutGroupEndsKeepTheirWholeLinesAndLoseOnlyACutOffLine()
    {
        var random = new Random(3);
        var lines = Group(0, 2, random).Concat(Group(1, 2, random)).Select(TrajectoryCollector.ToJsonLine).ToList();
        var path = _folder.File("old.jsonl");
        var text = string.Join("\n", lines) + "\n";
        File.WriteAllText(path, text[..^40]); // the old writer killed mid-line
        var recovery = TrajectoryFile.Recover(path);
        Assert.Equal([0, 1], recovery.DonePrompts.Order());
        Assert.Equal(3, recovery.Blocks);
        Assert.Equal(string.Join("\n", lines.Take(3)) + "\n", File.ReadAllText(path));
        Assert.Equal(3, TrajectoryCollector.Read(path).Count()); // readable again: the cut-off line no longer blocks
    }

    [Fact]
    public void DamageInTheMiddleIsAnErrorNamingTheLine()
    {
        var random = new Random(5);
        var path = _folder.File("bad.jsonl");
        TrajectoryFile.AppendGroup(path, 0, Group(0, 2, random));
        TrajectoryFile.AppendGroup(path, 1, Group(1, 2, random));
        var lines = File.ReadAllLines(path);
        lines[1] = lines[1][..30];
        File.WriteAllLines(path, lines);
        var e = Assert.Throws<InvalidDataException>(() => TrajectoryFile.Recover(path));
        Assert.Contains("bad.jsonl:2:", e.Message);

        lines = File.ReadAllLines(path);
        File.WriteAllLines(path, lines.Where((_, i) => i != 1)); // a block missing from group 0
        e = Assert.Throws<InvalidDataException>(() => TrajectoryFile.Recover(path));
        Assert.Contains("bad.jsonl:2: group_end for prompt 0 says 2 blocks", e.Message);
    }
}
