using Cllm.Text;
using System.Globalization;
using System.Text.Json;

namespace Cllm.Training.Data;

/// <summary>
/// Which values and phrasings a generated task may use. <see cref="Train"/> and <see cref="Test"/> draw the training
/// values and phrasings (the test split is new instances of the training distribution, the paper's setting);
/// <see cref="HeldOutValues"/> draws held-out names and numbers (all copyable from the question; months and statuses
/// stay the training ones, since an unseen month name cannot be mapped to its number); <see cref="HeldOutPhrasings"/>
/// draws the reserved phrasings with training values; <see cref="HeldOut"/> draws both held out, months included.
/// </summary>
public enum Split { Train, HeldOut, Test, HeldOutValues, HeldOutPhrasings }

/// <summary>How questions are worded: <see cref="Basic"/> is the 2-3 fixed phrasings per template of the first default
/// model's corpus (unchanged); <see cref="Rich"/> composes more (see <see cref="TaskGenerator"/>).</summary>
public enum Language { Basic, Rich }

/// <summary>
/// One generated task. <see cref="Answer"/> is the gold answer for exact-match evaluation of the first
/// assistant turn: the SQL text (sql), the tool call's JSON (tool) or the final number (math).
/// </summary>
public sealed record Conversation(string Domain, IReadOnlyList<ChatTurn> Turns, IReadOnlyList<ToolDefinition>? Tools, string Answer);

/// <summary>
/// Seeded synthetic tasks in three domains, after the CLLM paper's Spider and GSM8K plus tool use:
/// "sql" (text-to-SQL over <see cref="StoreDatabase"/>), "tool" (one <see cref="DemoTools"/> call, its
/// result, a one-sentence answer) and "math" (2-3 step word problems answered in a fixed style).
/// </summary>
/// <remarks>
/// Held-out tasks are new to the model by construction, in two ways:
/// <list type="number">
/// <item>Slot values. Every slot list (see <see cref="SlotVocabularies"/>, and the number ranges) is split
/// by position: the value at index i is held out when i % 5 == 4, and only held-out splits draw it.
/// Order statuses (three values) are the one slot that is not split.</item>
/// <item>Phrasings. Each template (SQL form, tool question, math problem) has 2-4 phrasings; the one at
/// index (template number % phrasing count) is used only by held-out tasks, the others only by training.</item>
/// </list>
/// A held-out task is thus a (template, phrasing) combination and slot values training never shows. The other
/// evaluation splits (see <see cref="Split"/>) hold out only one of the two.
/// Generation depends only on (seed, pseudo-slot rate, language, split, mix, count), never on earlier calls.
/// <para>
/// <see cref="Language.Rich"/> words questions compositionally, on top of the same templates and the same reserved
/// phrasing: more base phrasings (other word orders), synonyms, a lead-in ("Quick question: "), a polite tail
/// ("Thanks."), "Please ..." or "Could you ...?" before an imperative, a lower-case start, a missing final mark and
/// a typo in a word that is not a slot value (values stay exact: they are copied into the answer). Every fifth
/// lead-in and tail is reserved for held-out phrasings like the reserved base phrasing. <see cref="Language.Basic"/>
/// draws nothing for any of this, so it gives exactly the corpus of a generator without the option.
/// </para>
/// <para>
/// With a <c>pseudoSlotRate</c> above zero, that share of the city, customer, product, person and item values of
/// training sql and math tasks are made-up words (see <see cref="PseudoWord"/>): a model cannot memorise those, so
/// it has to learn to copy names from the question, which is what held-out values need. Tool tasks keep real values
/// (their tools only know the store's), held-out tasks are unchanged, and a rate of 0 gives exactly the corpus of
/// a generator without the option.
/// </para>
/// </remarks>
public sealed class TaskGenerator
{
    private readonly int _seed;
    private readonly double _pseudoSlotRate;
    private readonly Language _language;

    public TaskGenerator(int seed, double pseudoSlotRate = 0, Language language = Language.Basic)
    {
        if (!(pseudoSlotRate is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(pseudoSlotRate), pseudoSlotRate, "The pseudo-slot rate is a share between 0 and 1.");
        if (!Enum.IsDefined(language))
            throw new ArgumentOutOfRangeException(nameof(language), language, "The language is Basic or Rich.");
        _seed = seed;
        _pseudoSlotRate = pseudoSlotRate;
        _language = language;
    }

    public static IReadOnlyList<string> Domains { get; } = ["sql", "tool", "math"];

    /// <summary>The system turn of sql tasks; a host that wants text-to-SQL sends the same.</summary>
    public const string SqlSystemPrompt = "Write one SQLite query.\n" + StoreDatabase.CompactSchema;

    private static readonly string[] MonthNames = CultureInfo.InvariantCulture.DateTimeFormat.MonthNames[..12];
    private static readonly string[] People = ["Mia", "Leo", "Zoe", "Sam", "Nora", "Omar", "Lily", "Ravi", "Tara", "Eli"];
    private static readonly string[] Items = ["apples", "pencils", "stickers", "marbles", "cookies", "shells", "cards", "stamps", "crayons", "beads"];
    private static readonly int[] PriceLimits = [15, 20, 25, 30, 35, 40, 50, 60, 75, 90];

    // Template numbers (for the reserved phrasing) are positions in SqlTasks, then 100+ for tool questions
    // and 200+ for math problems.
    private sealed record SqlTask(string FormId, string[] Phrasings, string? ToolAnswer = null);

    private static readonly SqlTask[] SqlTasks =
    [
        new("customers_in_city_count", ["How many customers live in {city}?", "Count the customers from {city}.", "What is the number of customers in {city}?"],
            "There are {0} customers in {city}."),
        new("customers_in_city", ["List the customers who live in {city}.", "Which customers are from {city}?", "Show the names of customers in {city}."]),
        new("category_under_price", ["Which {category} products cost less than {price}?", "List {category} products priced under {price}.", "Show the {category} products cheaper than {price}."]),
        new("top_products_by_price", ["What are the {n} most expensive products?", "List the top {n} products by price.", "Show the {n} priciest products with their prices."]),
        new("cheapest_in_category", ["What is the cheapest {category} product?", "Which {category} product costs the least?"]),
        new("product_price", ["How much does the {product} cost?", "What is the price of the {product}?", "Tell me the price of the {product}."],
            "The {product} costs {0}."),
        new("category_avg_price", ["What is the average price of {category} products?", "On average, how much do {category} products cost?"],
            "The average price of {category} products is {0}."),
        new("customer_order_count", ["How many orders has {customer} placed?", "Count the orders made by {customer}.", "What is the number of orders from {customer}?"],
            "The number of orders placed by {customer} is {0}."),
        new("customer_quantity", ["How many items has {customer} ordered in total?", "What is the total quantity ordered by {customer}?"],
            "The total quantity ordered by {customer} is {0}."),
        new("customer_status_orders", ["Which orders of {customer} are {status}?", "List the ids of the {status} orders of {customer}.", "Show the orders by {customer} that are {status}."]),
        new("city_status_count", ["How many {status} orders are from customers in {city}?", "Count the {status} orders placed by customers living in {city}."],
            "The number of {status} orders from {city} is {0}."),
        new("product_units", ["How many units of the {product} have been ordered?", "What is the total quantity of the {product} ordered?", "Count the units ordered of the {product}."],
            "The total quantity of the {product} ordered is {0}."),
        new("category_revenue", ["What is the total revenue from {category} products?", "How much money have {category} products brought in?"],
            "The total revenue from {category} products is {0}."),
        new("orders_in_month", ["How many orders were placed in {month_name} 2024?", "Count the orders from {month_name} 2024.", "What is the number of orders made in {month_name} 2024?"],
            "The number of orders placed in {month_name} 2024 is {0}."),
    ];

    private static readonly string[] OrderPhrasings = ["What is the status of order {id}?", "Where is my order {id}?", "Has order {id} shipped yet?"];
    private static readonly string[] WeatherPhrasings = ["What is the weather like in {city}?", "What is the forecast for {city}?", "How warm will it be in {city}?"];
    private static readonly string[] MulAddPhrasings = ["What is {a} times {b} plus {c}?", "Calculate {a} * {b} + {c}.", "Work out {a} multiplied by {b}, plus {c}."];
    private static readonly string[] SumDivPhrasings = ["What is {a} plus {b}, divided by {c}?", "Calculate ({a} + {b}) / {c}."];

    // A math problem: phrasings, the numbers drawn (name, lowest, highest) and the worked steps, one
    // "expression = {result}" per line. Steps are evaluated in order; a draw is kept only if every step
    // gives a non-negative whole number, which is how "divides evenly" and "never below zero" are enforced.
    private sealed record MathTask(string[] Phrasings, (string Name, int Lo, int Hi)[] Numbers, string Steps);

    private static readonly MathTask[] MathTasks =
    [
        new(["{p} has {a} {item}. {p} gets {b} more and then gives away {c}. How many {item} does {p} have now?",
             "{p} starts with {a} {item}, receives {b} more, then loses {c}. How many {item} are left?"],
            [("a", 10, 40), ("b", 2, 20), ("c", 2, 11)], "{a} + {b} = {s1}\n{s1} - {c} = {s2}"),
        new(["{p} buys {n} bags of {item} with {m} in each bag and gives away {c}. How many {item} does {p} keep?",
             "There are {n} bags with {m} {item} each. {p} gives {c} of them to a friend. How many {item} are left?"],
            [("n", 2, 9), ("m", 2, 12), ("c", 1, 15)], "{n} * {m} = {s1}\n{s1} - {c} = {s2}"),
        new(["{p} shares {x} {item} equally among {k} friends. Each friend already had {b}. How many {item} does each friend have now?",
             "{x} {item} are split evenly between {k} kids, and {p} gives each kid {b} more. How many {item} does each kid have?"],
            [("x", 6, 60), ("k", 2, 9), ("b", 1, 10)], "{x} / {k} = {q}\n{q} + {b} = {s}"),
        new(["{p} packs {n} boxes of {item} with {m} in each box and has {b} loose {item}. How many {item} does {p} have in all?",
             "Each box holds {m} {item}. {p} has {n} boxes and {b} extra {item}. How many {item} is that in total?"],
            [("n", 2, 9), ("m", 2, 12), ("b", 1, 20)], "{n} * {m} = {s1}\n{s1} + {b} = {s2}"),
        new(["{p} has {a} {item} and buys {n} packs of {m}. Then {p} gives away {c}. How many {item} are left?",
             "{p} owns {a} {item}, adds {n} packs with {m} {item} each and then gives {c} away. How many {item} does {p} have?",
             "After getting {n} packs of {m} {item}, {p}, who had {a}, gives away {c}. How many {item} does {p} have now?"],
            [("a", 2, 20), ("n", 2, 6), ("m", 2, 10), ("c", 1, 20)], "{n} * {m} = {s1}\n{a} + {s1} = {s2}\n{s2} - {c} = {s3}"),
        new(["{p} had {a} {item}, lost {c}, and put the rest equally into {k} boxes. How many {item} are in each box?",
             "{p} has {a} {item}, uses {c} of them, and splits the others evenly among {k} friends. How many {item} does each friend get?"],
            [("a", 10, 60), ("c", 1, 15), ("k", 2, 9)], "{a} - {c} = {s1}\n{s1} / {k} = {q}"),
    ];

    /// <summary>The database the sql and tool tasks are about (always the default seed: the demo's store).</summary>
    public StoreDatabase Database { get; } = new();

    /// <summary>The split string slots in order; the held-out values are those at index i with i % 5 == 4.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> SlotVocabularies => new Dictionary<string, IReadOnlyList<string>>
    {
        ["city"] = StoreDatabase.Cities,
        ["category"] = StoreDatabase.Categories,
        ["customer"] = Database.Customers.Select(c => c.Name).ToList(),
        ["product"] = Database.Products.Select(p => p.Name).ToList(),
        ["month_name"] = MonthNames,
        ["person"] = People,
        ["item"] = Items,
    };

    public static bool IsHeldOutIndex(int index) => index % 5 == 4;

    public IEnumerable<Conversation> Generate(int count, Split split, IReadOnlyDictionary<string, double>? mix = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        double[] weights = Domains.Select(d => mix is null ? 1.0 : mix.GetValueOrDefault(d)).ToArray();
        if (mix?.Keys.FirstOrDefault(k => !Domains.Contains(k)) is { } unknown)
            throw new ArgumentException($"Unknown domain '{unknown}' in mix; expected {string.Join(", ", Domains)}.", nameof(mix));
        if (weights.Any(w => w < 0 || !double.IsFinite(w)) || weights.Sum() <= 0)
            throw new ArgumentException("Mix weights must be finite, non-negative and not all zero.", nameof(mix));
        return GenerateCore(count, split, weights);
    }

    private IEnumerable<Conversation> GenerateCore(int count, Split split, double[] weights)
    {
        // Train and HeldOut keep the first corpus's streams; the later splits get streams of their own.
        var rng = new Random(split is Split.Train or Split.HeldOut ? unchecked(_seed * 2 + (int)split) : unchecked(_seed * 1_000_003 + (int)split * 7_919));
        var vocab = SlotVocabularies;
        var wording = _language == Language.Rich ? new QuestionWording(rng) : null;
        for (int i = 0; i < count; i++)
        {
            double r = rng.NextDouble() * weights.Sum();
            int domain = 0;
            while (domain < weights.Length - 1 && (r -= weights[domain]) >= 0) domain++;
            var draw = new Draw(rng, split, vocab, _pseudoSlotRate, wording);
            yield return Domains[domain] switch
            {
                "sql" => Sql(draw),
                "tool" => ToolUse(draw),
                _ => MathProblem(draw),
            };
        }
    }

    private static Conversation Sql(Draw draw)
    {
        int t = draw.Rng.Next(SqlTasks.Length);
        var slots = draw.SqlSlots(allowPseudo: true);
        string sql = StoreDatabase.Form(SqlTasks[t].FormId).Format(slots);
        ChatTurn[] turns = [new("system", SqlSystemPrompt), new("user", Fill(draw.Phrasing(t, SqlTasks[t].Phrasings), slots)), new("assistant", sql)];
        return new Conversation("sql", turns, null, sql);
    }

    private Conversation ToolUse(Draw draw)
    {
        var slots = draw.SqlSlots(allowPseudo: false);
        ToolCall call;
        string question;
        Func<JsonElement, string> answer;
        switch (draw.Rng.Next(4))
        {
            case 0:
                int t = draw.Pick(Enumerable.Range(0, SqlTasks.Length).Where(i => SqlTasks[i].ToolAnswer is not null).ToList(), partitioned: false);
                question = draw.Phrasing(t, SqlTasks[t].Phrasings);
                call = Call(DemoTools.RunSql, StoreDatabase.Form(SqlTasks[t].FormId).Format(slots));
                answer = result => SqlTasks[t].ToolAnswer!.Replace("{0}", result[0][0].GetRawText());
                break;
            case 1:
                int id = draw.Number(1, Database.Orders.Count);
                slots["id"] = id.ToString(CultureInfo.InvariantCulture);
                question = draw.Phrasing(100, OrderPhrasings);
                call = Call(DemoTools.GetOrderStatus, id);
                answer = result => $"Order {id} is {result.GetProperty("status").GetString()}.";
                break;
            case 2:
                question = draw.Phrasing(101, WeatherPhrasings);
                call = Call(DemoTools.GetWeather, slots["city"]);
                answer = result => $"It will be {result.GetProperty("forecast").GetString()} in {slots["city"]} with a high of {result.GetProperty("high_c").GetRawText()} C.";
                break;
            default:
                // Two expression shapes; (a + b) / c is redrawn until it divides evenly.
                bool mulAdd = draw.Rng.Next(2) == 0;
                int a, b, c;
                do (a, b, c) = mulAdd ? (draw.Number(12, 99), draw.Number(2, 12), draw.Number(10, 60)) : (draw.Number(12, 99), draw.Number(12, 99), draw.Number(2, 12));
                while (!mulAdd && (a + b) % c != 0);
                foreach (var (k, v) in new[] { ("a", a), ("b", b), ("c", c) }) slots[k] = v.ToString(CultureInfo.InvariantCulture);
                question = draw.Phrasing(mulAdd ? 102 : 103, mulAdd ? MulAddPhrasings : SumDivPhrasings);
                call = Call(DemoTools.Calculate, Fill(mulAdd ? "{a} * {b} + {c}" : "({a} + {b}) / {c}", slots));
                answer = result => $"The result is {result.GetProperty("result").GetRawText()}.";
                break;
        }

        string resultJson = DemoTools.Invoke(call, Database);
        using var doc = JsonDocument.Parse(resultJson);
        ChatTurn[] turns =
        [
            new("user", Fill(question, slots)),
            new("assistant", "", call),
            new("tool", resultJson),
            new("assistant", Fill(answer(doc.RootElement), slots)),
        ];
        return new Conversation("tool", turns, DemoTools.All, call.ToJson());
    }

    private static Conversation MathProblem(Draw draw)
    {
        int t = draw.Rng.Next(MathTasks.Length);
        var task = MathTasks[t];
        Dictionary<string, string> slots;
        string? result;
        do (slots, result) = TryWorkOut(task, draw); while (result is null);
        slots["p"] = draw.Slot("person", allowPseudo: true);
        slots["item"] = draw.Slot("item", allowPseudo: true);
        ChatTurn[] turns =
        [
            new("user", Fill(draw.Phrasing(200 + t, task.Phrasings), slots)),
            new("assistant", Fill(task.Steps, slots) + "\nAnswer: " + result),
        ];
        return new Conversation("math", turns, null, result);
    }

    /// <summary>Draws the numbers and evaluates each step; the result is null when a step is negative or fractional.</summary>
    private static (Dictionary<string, string> Slots, string? Result) TryWorkOut(MathTask task, Draw draw)
    {
        var slots = task.Numbers.ToDictionary(n => n.Name, n => draw.Number(n.Lo, n.Hi).ToString(CultureInfo.InvariantCulture));
        string? result = null;
        foreach (var step in task.Steps.Split('\n'))
        {
            var sides = step.Split(" = ");
            double? value = Arithmetic.TryEvaluate(Fill(sides[0], slots));
            if (value is not { } v || v < 0 || v != System.Math.Floor(v)) return (slots, null);
            result = slots[sides[1].Trim('{', '}')] = ((long)v).ToString(CultureInfo.InvariantCulture);
        }

        return (slots, result);
    }

    private static readonly string[] Onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "kl", "sh"];
    private static readonly string[] Vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea"];
    private static readonly string[] Codas = ["", "", "", "n", "r", "l", "s", "m"];

    /// <summary>A made-up lower-case word of two or three syllables, e.g. "brailo" or "tousven".</summary>
    public static string PseudoWord(Random rng)
    {
        var word = new System.Text.StringBuilder();
        for (int i = 0, count = rng.Next(2, 4); i < count; i++)
            word.Append(Onsets[rng.Next(Onsets.Length)]).Append(Vowels[rng.Next(Vowels.Length)]).Append(Codas[rng.Next(Codas.Length)]);
        return word.ToString();
    }

    private static string Capitalized(string word) => char.ToUpperInvariant(word[0]) + word[1..];

    // Each slot's made-up values look like its real ones: one capitalised word for a city or a person, two for a
    // customer or a product, a plural for an item.
    private static readonly Dictionary<string, Func<Func<string>, string>> PseudoShapes = new()
    {
        ["city"] = word => Capitalized(word()),
        ["person"] = word => Capitalized(word()),
        ["customer"] = word => Capitalized(word()) + " " + Capitalized(word()),
        ["product"] = word => Capitalized(word()) + " " + Capitalized(word()),
        ["item"] = word => word() + "s",
    };

    private static string Fill(string template, IReadOnlyDictionary<string, string> slots) => SqlForm.Fill(template, slots);

    private static ToolCall Call(ToolDefinition tool, object value) => new(tool.Name, new Dictionary<string, object?> { [tool.Parameters[0].Name] = value });

    /// <summary>Draws for one task, honouring the split's half of every slot list and phrasing list.</summary>
    private sealed class Draw(Random rng, Split split, IReadOnlyDictionary<string, IReadOnlyList<string>> vocab, double pseudoSlotRate,
        QuestionWording? wording)
    {
        private readonly bool _heldOutValues = split is Split.HeldOut or Split.HeldOutValues;

        public Random Rng => rng;

        public T Pick<T>(IReadOnlyList<T> values, bool partitioned = true) => PickFrom(values, partitioned ? _heldOutValues : null);

        /// <summary>A value from the held-out part (true), the training part (false) or the whole list (null).</summary>
        private T PickFrom<T>(IReadOnlyList<T> values, bool? heldOut)
        {
            var part = heldOut is { } h ? values.Where((_, i) => IsHeldOutIndex(i) == h).ToList() : values;
            return part[rng.Next(part.Count)];
        }

        /// <summary>A value of the slot's split; in training, with the pseudo-slot rate, a made-up one of the slot's shape.</summary>
        public string Slot(string name, bool allowPseudo = false)
        {
            // The rate test draws from the generator only when the option is on, so rate 0 leaves the corpus as it was.
            if (allowPseudo && pseudoSlotRate > 0 && split == Split.Train && PseudoShapes.TryGetValue(name, out var shape) && rng.NextDouble() < pseudoSlotRate)
            {
                string value;
                do value = shape(() => PseudoWord(rng));
                while (vocab.Values.Any(list => list.Contains(value, StringComparer.OrdinalIgnoreCase)));
                return value;
            }

            return Pick(vocab[name]);
        }

        public int Number(int lo, int hi) => Pick(Enumerable.Range(lo, hi - lo + 1).ToList());

        /// <summary>Held-out tasks use the reserved phrasing (index template % count); training uses the others.</summary>
        public string Phrasing(int template, string[] phrasings)
        {
            int reserved = template % phrasings.Length;
            bool heldOut = split is Split.HeldOut or Split.HeldOutPhrasings;
            if (wording is not null) return wording.Compose(template, phrasings, reserved, heldOut);
            if (heldOut) return phrasings[reserved];
            int k = rng.Next(phrasings.Length - 1);
            return phrasings[k >= reserved ? k + 1 : k];
        }

        /// <summary>A value for every slot a SQL form or question may name (unused ones cost nothing).</summary>
        public Dictionary<string, string> SqlSlots(bool allowPseudo)
        {
            // Month names are not copyable ("May" gives '05'): only the mixed held-out split holds them out.
            int month = PickFrom(Enumerable.Range(0, 12).ToList(), split == Split.HeldOut);
            return new Dictionary<string, string>
            {
                ["city"] = Slot("city", allowPseudo),
                ["category"] = Slot("category"),
                ["customer"] = Slot("customer", allowPseudo),
                ["product"] = Slot("product", allowPseudo),
                ["status"] = Pick(StoreDatabase.Statuses, partitioned: false),
                ["price"] = Pick(PriceLimits).ToString(CultureInfo.InvariantCulture),
                ["n"] = Number(2, 11).ToString(CultureInfo.InvariantCulture),
                ["month"] = (month + 1).ToString("00", CultureInfo.InvariantCulture),
                ["month_name"] = MonthNames[month],
            };
        }
    }
}
