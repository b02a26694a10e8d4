using Cllm.Text;
using System.CommandLine;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary><c>cllm data</c>: the seeded synthetic corpus (sql, tool, math), its prompts and held-out prompts.</summary>
static class DataCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder to write.", Required = true };
        var train = new Option<int>("--train") { Description = "Training conversations.", DefaultValueFactory = _ => 20000 };
        var heldOut = new Option<int>("--held-out") { Description = "Held-out conversations (unseen slot values and phrasings).", DefaultValueFactory = _ => 300 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var mix = new Option<string?>("--mix") { Description = "Domain weights, e.g. sql=1,tool=1,math=1." };
        var pseudoSlots = new Option<double>("--pseudo-slots") { Description = "Share of training sql/math name slots filled with made-up words, so a model must copy names (0 to 1).", DefaultValueFactory = _ => 0 };
        var command = new Command("data", "Write the synthetic task corpus: train.jsonl, train-prompts.jsonl, heldout-prompts.jsonl, tokenizer.txt.")
        {
            output, train, heldOut, seed, mix, pseudoSlots,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var folder = parse.GetValue(output)!;
            Directory.CreateDirectory(folder);
            var weights = parse.GetValue(mix) is { } text
                ? text.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0].Trim(), p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture))
                : null;
            var generator = new TaskGenerator(parse.GetValue(seed), parse.GetValue(pseudoSlots));
            var training = generator.Generate(parse.GetValue(train), Split.Train, weights).ToList();
            var held = new TaskGenerator(parse.GetValue(seed) + 1).Generate(parse.GetValue(heldOut), Split.HeldOut, weights).ToList();
            var examples = CorpusWriter.WriteExamples(Path.Combine(folder, "train.jsonl"), training);
            CorpusWriter.WritePrompts(Path.Combine(folder, "train-prompts.jsonl"), training);
            CorpusWriter.WritePrompts(Path.Combine(folder, "heldout-prompts.jsonl"), held);
            CorpusWriter.WriteTokenizerText(Path.Combine(folder, "tokenizer.txt"), training);
            Console.WriteLine($"Wrote {training.Count} training conversations ({examples} examples) and {held.Count} held-out prompts to {folder}");
            return 0;
        }));
        return command;
    }
}
