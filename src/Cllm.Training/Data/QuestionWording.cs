using System.Text.RegularExpressions;

namespace Cllm.Training.Data;

/// <summary>
/// The rich wording of <see cref="TaskGenerator"/>'s questions (<see cref="Language.Rich"/>), composed from parts: a
/// base phrasing (the template's own, or one of <see cref="Extras"/> in another word order), synonyms, a lead-in, a
/// polite tail or a "Please"/"Could you" before an imperative, a lower-case start, a missing final mark and one typo.
/// Works on the template text, before slots are filled, so values are never touched: they stay copyable.
/// </summary>
/// <remarks>
/// Held-out phrasings use only the template's reserved base phrasing and the reserved lead-ins and tails (every fifth);
/// training and the test split never use those, so a held-out phrasing's core never occurs in training.
/// </remarks>
internal sealed partial class QuestionWording(Random rng)
{
    // Other word orders and wordings per template number (positions in the SQL list, 100+ tool, 200+ math); training only.
    private static readonly Dictionary<int, string[]> Extras = new()
    {
        [0] = ["In {city}, how many customers are there?", "How many of our customers are based in {city}?", "Number of customers in {city}?"],
        [1] = ["Who are the customers in {city}?", "In {city}, which customers do we have?", "Names of the customers living in {city}, please."],
        [2] = ["Under {price}, which {category} products are there?", "Find the {category} products with a price below {price}."],
        [3] = ["Which {n} products have the highest prices?", "By price, what are the top {n} products?"],
        [4] = ["Among {category} products, which is the cheapest?", "Find the lowest-priced {category} product."],
        [5] = ["The {product}: how much is it?", "What does the {product} cost?"],
        [6] = ["For {category} products, what is the average price?", "Give the mean price of the {category} products."],
        [7] = ["For {customer}, how many orders are there?", "How many times has {customer} ordered?"],
        [8] = ["In total, how many items did {customer} order?", "Sum up the quantity that {customer} has ordered."],
        [9] = ["Of the orders by {customer}, which are {status}?", "Find the {status} orders of {customer}."],
        [10] = ["For customers in {city}, how many orders are {status}?", "Number of {status} orders from {city}?"],
        [11] = ["In total, how many {product} units were ordered?", "How many of the {product} have people ordered?"],
        [12] = ["For {category} products, what is the total revenue?", "How much revenue do the {category} products make?"],
        [13] = ["In {month_name} 2024, how many orders were placed?", "How many orders came in during {month_name} 2024?"],
        [100] = ["Can I get the status of order {id}?", "Order {id}: what is its status?", "Is order {id} on its way?"],
        [101] = ["In {city}, what will the weather be?", "Tell me the weather in {city}.", "Weather in {city}?"],
        [102] = ["Multiply {a} by {b} and add {c}.", "{a} times {b}, plus {c}: what is it?"],
        [103] = ["Add {a} and {b}, then divide by {c}.", "What do you get when {a} plus {b} is divided by {c}?"],
        [200] = ["{p} had {a} {item}, got {b} more, and gave {c} away. How many {item} does {p} have now?"],
        [201] = ["{p} buys {n} bags of {item}, {m} in each bag, then gives away {c}. How many {item} does {p} keep?"],
        [202] = ["Each of {k} friends already had {b} {item}. {p} shares {x} {item} equally among them. How many {item} does each friend have now?"],
        [203] = ["{p} has {n} boxes of {item} with {m} in each box, plus {b} loose ones. How many {item} does {p} have in all?"],
        [204] = ["{p} had {a} {item}, bought {n} packs of {m}, then gave away {c}. How many {item} are left?"],
        [205] = ["{p} had {a} {item} and lost {c}. The rest went equally into {k} boxes. How many {item} are in each box?"],
    };

    // Each match is replaced by one of the alternatives with probability SynonymRate (the original stays among them).
    private static readonly (Regex Pattern, string[] Alternatives)[] Synonyms =
    [
        (Word("customers"), ["clients", "shoppers"]),
        (Word("How many"), ["What number of"]),
        (Word("What is"), ["What's"]),
        (Start("List"), ["Give me", "Name"]),
        (Start("Show"), ["Display", "Show me"]),
        (Word("cost"), ["sell for"]),
        (Word("cheapest"), ["least expensive", "lowest-priced"]),
        (Word("most expensive"), ["costliest"]),
        (Word("Calculate"), ["Compute"]),
        (Start("Count"), ["Tally"]),
        (Word("the total"), ["the overall"]),
        (Word("placed"), ["made"]),
        (Word("gives away"), ["hands out"]),
        (Word("equally"), ["evenly"]),
        (Word("Tell me"), ["Let me know"]),
        (Word("forecast"), ["weather forecast"]),
    ];

    private static readonly string[] LeadIns =
    [
        "Quick question: ", "Hi! ", "Hello, ", "Hey, ", "Question: ", "I was wondering: ", "Can you help? ", "Good morning. ",
        "Hi there. ", "I need to know: ", "Excuse me, ", "Hello! ", "Please help: ", "One more thing: ", "OK, ",
    ];

    private static readonly string[] Tails =
    [
        " Thanks.", " Thank you!", " Thanks a lot.", " Cheers.", " Thank you very much.", " Much appreciated.", " Thanks in advance.",
        " Please and thank you.", " Ta.", " Thanks!",
    ];

    // Politeness before an imperative: the first word lower-cased after it; "Could you"/"Can you" make it a question.
    private static readonly string[] Polite = ["Please ", "Could you ", "Can you ", "Kindly "];

    private const double SynonymRate = 0.4, LeadInRate = 0.3, TailRate = 0.25, PoliteRate = 0.3, LowerRate = 0.1, DropMarkRate = 0.1, TypoRate = 0.15;

    /// <summary>Held-out phrasings' lead-ins and tails are those at i % 5 == 4, like held-out values.</summary>
    internal static IReadOnlyList<string> ReservedLeadIns { get; } = LeadIns.Where((_, i) => TaskGenerator.IsHeldOutIndex(i)).ToArray();

    internal static IReadOnlyList<string> ReservedTails { get; } = Tails.Where((_, i) => TaskGenerator.IsHeldOutIndex(i)).ToArray();

    /// <summary>A question template for <paramref name="template"/>: its reserved phrasing when held out, else any other.</summary>
    public string Compose(int template, string[] phrasings, int reserved, bool heldOut)
    {
        string text;
        if (heldOut) text = phrasings[reserved];
        else
        {
            var choices = phrasings.Where((_, i) => i != reserved).Concat(Extras.GetValueOrDefault(template, [])).ToList();
            text = choices[rng.Next(choices.Count)];
        }

        foreach (var (pattern, alternatives) in Synonyms)
            text = pattern.Replace(text, m => rng.NextDouble() < SynonymRate ? Cased(alternatives[rng.Next(alternatives.Length)], m.Value) : m.Value);

        if (Imperative().IsMatch(text) && rng.NextDouble() < PoliteRate)
        {
            string polite = Polite[rng.Next(Polite.Length)];
            text = polite + LowerFirst(text);
            if (polite.StartsWith("C", StringComparison.Ordinal) && text.EndsWith('.')) text = text[..^1] + "?";
        }
        else if (rng.NextDouble() < LowerRate) text = LowerFirst(text);

        if (rng.NextDouble() < LeadInRate)
        {
            string lead = Part(LeadIns, heldOut);
            text = lead + (lead.EndsWith(", ", StringComparison.Ordinal) ? LowerFirst(text) : text);
        }

        if (rng.NextDouble() < TailRate) text += Part(Tails, heldOut);
        else if (rng.NextDouble() < DropMarkRate) text = text.TrimEnd('?', '.');

        if (rng.NextDouble() < TypoRate) text = Typo(text);
        return text;
    }

    private string Part(string[] parts, bool heldOut)
    {
        var part = parts.Where((_, i) => TaskGenerator.IsHeldOutIndex(i) == heldOut).ToList();
        return part[rng.Next(part.Count)];
    }

    /// <summary>One swapped, dropped or doubled letter in a word of 4+ letters that is not a slot.</summary>
    private string Typo(string text)
    {
        var words = TypoCandidates().Matches(text).Where(m => m.Value[0] != '{').ToList();
        if (words.Count == 0) return text;
        var word = words[rng.Next(words.Count)];
        int at = word.Index + 1 + rng.Next(word.Length - 2); // never the first letter, nor past the last
        return rng.Next(3) switch
        {
            0 => text[..at] + text[at + 1] + text[at] + text[(at + 2)..],
            1 => text.Remove(at, 1),
            _ => text.Insert(at, text[at].ToString()),
        };
    }

    private static string LowerFirst(string text) =>
        text.Length > 0 && char.IsUpper(text[0]) ? char.ToLowerInvariant(text[0]) + text[1..] : text;

    private static string Cased(string replacement, string original) =>
        char.IsUpper(original[0]) ? char.ToUpperInvariant(replacement[0]) + replacement[1..] : char.ToLowerInvariant(replacement[0]) + replacement[1..];

    private static Regex Word(string phrase) => new($@"(?<![{{\w]){Regex.Escape(phrase)}(?![}}\w])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static Regex Start(string word) => new($@"^{Regex.Escape(word)}\b", RegexOptions.CultureInvariant);

    [GeneratedRegex(@"^(List|Show|Count|Calculate|Tell|Work|Give|Name|Display|Compute|Find|Multiply|Add|Sum|Tally)\b")]
    private static partial Regex Imperative();

    // Slots are matched whole so that their letters are never picked.
    [GeneratedRegex(@"\{\w+\}|[A-Za-z]{4,}")]
    private static partial Regex TypoCandidates();
}
