using System.Text.Json.Nodes;

namespace Cllm.Cli.Bench;

/// <summary>The prompts a bench runs: from a text file (one per line), a JSONL file (a "prompt" field per line) or built in.</summary>
static class BenchPrompts
{
    static readonly string[] Defaults =
    [
        "The history of the printing press begins",
        "Write a function that returns the sum of a list of numbers.",
        "Question: A farmer has 12 apples and gives away 5. How many are left?\nAnswer:",
        "SELECT name FROM customers WHERE",
    ];

    /// <summary>
    /// The prompts of <paramref name="path"/> (the built-in four when null), <paramref name="count"/> of them evenly spread.
    /// </summary>
    public static string[] Read(string? path, int? count)
    {
        string[] texts;
        if (path is null) texts = Defaults;
        else if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            texts = File.ReadLines(path).Where(l => l.Trim().Length > 0)
                .Select((l, i) => (JsonNode.Parse(l)?["prompt"]?.GetValue<string>())
                                  ?? throw new InvalidDataException($"{path} line {i + 1}: no \"prompt\" string."))
                .ToArray();
        else texts = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToArray();
        if (texts.Length == 0) throw new ArgumentException($"{path}: no prompts.");
        if (count is { } n && n < texts.Length)
        {
            if (n < 1) throw new ArgumentException("--prompt-count must be at least 1.");
            texts = Enumerable.Range(0, n).Select(i => texts[(int)((long)i * texts.Length / n)]).ToArray();
        }
        return texts;
    }
}
