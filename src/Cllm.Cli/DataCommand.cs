using Cllm.Text;
using System.CommandLine;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm data</c>: the seeded synthetic corpus (sql, tool, math), its prompts and the evaluation splits:
/// test (new instances of the training distribution), held-out values, held-out phrasings, and the mixed held-out
/// set of the first default model (values, phrasings and months all unseen).
/// </summary>
static class DataCommand
{
    /// <summary>The evaluation splits, by the name <c>cllm eval --split</c> takes; the file is NAME-prompts.jsonl.</summary>
    public static IReadOnlyList<(string Name, Split Split)> EvaluationSplits { get; } =
    [
        ("test", Split.Test), ("heldout-values", Split.HeldOutValues), ("heldout-phrasings", Split.HeldOutPhrasings), ("heldout", Split.HeldOut),
    ];

    public static string PromptsFile(string split) => split + "-prompts.jsonl";

    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder to write.", Required = true };
        var train = new Option<int>("--train") { Description = "Training conversations.", DefaultValueFactory = _ => 20000 };
        var heldOut = new Option<int>("--held-out")
        {
            Description = "Prompts in each evaluation split (test, heldout-values, heldout-phrasings, heldout).", DefaultValueFactory = _ => 300,
        };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var mix = new Option<string?>("--mix") { Description = "Domain weights, e.g. sql=1,tool=1,math=1." };
        var pseudoSlots = new Option<double>("--pseudo-slots") { Description = "Share of training sql/math name slots filled with made-up words, so a model must copy names (0 to 1).", DefaultValueFactory = _ => 0 };
        var language = new Option<string>("--language")
        {
            Description = "Question wording: basic (2-3 fixed phrasings per template, the first default model's corpus) or rich " +
                          "(composed: more word orders, synonyms, lead-ins, politeness, typos).",
            DefaultValueFactory = _ => "basic",
        };
        var command = new Command("data", "Write the synthetic task corpus: train.jsonl, train-prompts.jsonl, the evaluation splits " +
                                          "test-prompts.jsonl, heldout-values-prompts.jsonl, heldout-phrasings-prompts.jsonl, heldout-prompts.jsonl, " +
                                          "and tokenizer.txt.")
        {
            output, train, heldOut, seed, mix, pseudoSlots, language,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var folder = parse.GetValue(output)!;
            Directory.CreateDirectory(folder);
            var weights = parse.GetValue(mix) is { } text
                ? text.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0].Trim(), p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture))
                : null;
            var wording = parse.GetValue(language) switch
            {
                "basic" => Language.Basic,
                "rich" => Language.Rich,
                var other => throw new ArgumentException($"Unknown --language '{other}'; use basic or rich."),
            };
            var generator = new TaskGenerator(parse.GetValue(seed), parse.GetValue(pseudoSlots), wording);
            var training = generator.Generate(parse.GetValue(train), Split.Train, weights).ToList();
            var examples = CorpusWriter.WriteExamples(Path.Combine(folder, "train.jsonl"), training);
            CorpusWriter.WritePrompts(Path.Combine(folder, "train-prompts.jsonl"), training);
            CorpusWriter.WriteTokenizerText(Path.Combine(folder, "tokenizer.txt"), training);
            Console.WriteLine($"Wrote {training.Count} training conversations ({examples} examples) to {folder}");
            // Evaluation prompts come from another seed's generator; the mixed held-out set is the first default model's.
            var evaluation = new TaskGenerator(parse.GetValue(seed) + 1, language: wording);
            var seen = training.Select(c => c.Turns.First(t => t.Role == "user").Content).ToHashSet(StringComparer.Ordinal);
            foreach (var (name, split) in EvaluationSplits)
            {
                var prompts = evaluation.Generate(parse.GetValue(heldOut), split, weights).ToList();
                CorpusWriter.WritePrompts(Path.Combine(folder, PromptsFile(name)), prompts);
                // With few values and phrasings many test questions also occur in training, word for word: say how many.
                var verbatim = prompts.Count(c => seen.Contains(c.Turns.First(t => t.Role == "user").Content));
                Console.WriteLine($"  {PromptsFile(name)}: {prompts.Count} prompts, {verbatim} of whose questions occur verbatim in training");
            }
            return 0;
        }));
        return command;
    }
}
