using Cllm.Text;
using System.CommandLine;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Training;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm collect</c>: Jacobi trajectories of a teacher model on a prompts file, block after block.
/// Appends one JSON line per block and a group_end line, all blocks of a prompt in one write
/// (<see cref="TrajectoryFile"/>), so a run killed at any byte resumes by dropping an unfinished last group and
/// skipping the prompts already in the file; <c>--shard i/N</c> takes every N-th prompt, and shards' files concatenate.
/// </summary>
static class CollectCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompts = new Option<string>("--prompts") { Description = "Prompts JSONL (cllm data).", Required = true };
        var block = CliOptions.Block();
        var output = new Option<string>("--out") { Description = "Trajectories JSONL to append to.", Required = true };
        var augment = new Option<bool>("--augment") { Description = "Add states with about half the wrong tokens corrected." };
        var shard = new Option<string>("--shard") { Description = "i/N: take prompts whose index is i modulo N.", DefaultValueFactory = _ => "0/1" };
        var maxTokens = CliOptions.MaxTokens();
        var limit = new Option<int?>("--limit") { Description = "Use at most this many prompts." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var threads = CliOptions.Threads();
        var command = new Command("collect", "Collect Jacobi trajectories (block after block) for consistency training.")
        {
            model, prompts, block, output, augment, shard, maxTokens, limit, seed, threads,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var parts = parse.GetValue(shard)!.Split('/');
            if (parts.Length != 2 || !int.TryParse(parts[0], out var index) || !int.TryParse(parts[1], out var count) || count < 1 || index < 0 || index >= count)
                throw new ArgumentException($"--shard must be i/N with 0 <= i < N, not '{parse.GetValue(shard)}'.");
            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions { Threads = parse.GetValue(threads) });
            var outPath = parse.GetValue(output)!;
            // An unfinished group at the end (a killed run) is cut off here and collected again below.
            var recovery = TrajectoryFile.Recover(outPath);
            if (recovery.DroppedBytes > 0)
                Console.Error.WriteLine($"{outPath}: dropped an unfinished group at the end ({recovery.DroppedBytes} bytes, " +
                                        $"{recovery.DroppedLines} whole blocks); its prompt is collected again");
            var done = recovery.DonePrompts;
            var all = CorpusWriter.ReadPrompts(parse.GetValue(prompts)!).Take(parse.GetValue(limit) ?? int.MaxValue).ToList();
            var mine = Enumerable.Range(0, all.Count).Where(i => i % count == index && !done.Contains(i)).ToList();
            Console.Error.WriteLine($"{mine.Count} prompts to collect ({done.Count} already in {outPath})");
            using var cache = new KvCache(engine.Config, engine.ContextLength, engine.Model.DType, engine.Model.Device);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            long records = 0, states = 0;
            for (var k = 0; k < mine.Count; k++)
            {
                var i = mine[k];
                // Seeded per prompt: the same trajectories whatever the shard or resume point.
                var random = new Random(parse.GetValue(seed) * 1_000_003 + i);
                var trajectories = TrajectoryCollector.Collect(engine.Model, cache, i, engine.Tokenizer.Encode(all[i].Prompt),
                    parse.GetValue(block), parse.GetValue(maxTokens), engine.EosIds, parse.GetValue(augment), random);
                TrajectoryFile.AppendGroup(outPath, i, trajectories);
                records += trajectories.Count;
                states += trajectories.Sum(t => t.States.Length);
                var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / (k + 1) * (mine.Count - k - 1));
                Console.Error.Write($"\rprompt {k + 1}/{mine.Count}, {records} blocks, {states} states, ETA {eta:hh\\:mm\\:ss}   ");
            }
            Console.Error.WriteLine();
            Console.WriteLine($"Collected {records} trajectories ({states} states) into {outPath}");
            return 0;
        }));
        return command;
    }
}
