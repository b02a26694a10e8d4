using System.Text.RegularExpressions;
using Cllm.Text;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Training.Data;

public sealed class TaskGeneratorTests(ITestOutputHelper output)
{
    static string Text(Conversation c) => CllmChatFormat.Render(c.Turns, c.Tools, addGenerationPrompt: false);

    [Fact]
    public void SameSeedGivesIdenticalOutputAndOtherSeedsDiffer()
    {
        foreach (var split in new[] { Split.Train, Split.HeldOut })
        {
            var a = new TaskGenerator(11).Generate(300, split).Select(Text).ToList();
            var b = new TaskGenerator(11).Generate(300, split).Select(Text).ToList();
            var c = new TaskGenerator(12).Generate(300, split).Select(Text).ToList();
            Assert.Equal(a, b);
            Assert.NotEqual(a, c);
            Assert.True(a.Zip(c).Count(p => p.First != p.Second) > 250, "a different seed should change nearly every task");
        }

        // Calls do not influence each other: a train batch is the same whether or not held-out came first.
        var g = new TaskGenerator(11);
        _ = g.Generate(50, Split.HeldOut).ToList();
        Assert.Equal(new TaskGenerator(11).Generate(40, Split.Train).Select(Text), g.Generate(40, Split.Train).Select(Text));
    }

    [Fact]
    public void HeldOutSlotValuesNeverAppearInTrainingAndAllAppearInHeldOut()
    {
        var gen = new TaskGenerator(3);
        var train = gen.Generate(4000, Split.Train).ToList();
        var heldOut = gen.Generate(4000, Split.HeldOut).ToList();
        string trainText = string.Join("\n", train.Select(Text));
        string heldOutText = string.Join("\n", heldOut.Select(Text));
        int checkedValues = 0;
        foreach (var (slot, values) in gen.SlotVocabularies)
        {
            // The documented rule, applied here independently: index i is held out when i % 5 == 4.
            for (int i = 0; i < values.Count; i++)
            {
                var word = new Regex($@"\b{Regex.Escape(values[i])}\b", RegexOptions.IgnoreCase);
                if (i % 5 == 4)
                {
                    Assert.False(word.IsMatch(trainText), $"held-out {slot} '{values[i]}' occurs in training data");
                    Assert.True(word.IsMatch(heldOutText), $"held-out {slot} '{values[i]}' is never used by the held-out split");
                    checkedValues++;
                }
            }
        }

        Assert.Equal(2 + 1 + 8 + 6 + 2 + 2 + 2, checkedValues); // cities, categories, customers, products, months, people, items

        // Number slots follow the same rule over their range; order ids (range 1..200) are visible in the calls.
        int OrderId(Conversation c) => Convert.ToInt32(c.Turns[1].ToolCall!.Arguments["order_id"]);
        var trainIds = train.Where(c => c.Turns.Count > 1 && c.Turns[1].ToolCall?.Name == "get_order_status").Select(OrderId).ToList();
        var heldOutIds = heldOut.Where(c => c.Turns.Count > 1 && c.Turns[1].ToolCall?.Name == "get_order_status").Select(OrderId).ToList();
        Assert.True(trainIds.Count > 100 && heldOutIds.Count > 100);
        Assert.All(trainIds, id => Assert.NotEqual(4, (id - 1) % 5));
        Assert.All(heldOutIds, id => Assert.Equal(4, (id - 1) % 5));
    }

    [Fact]
    public void PseudoSlotsReplaceAboutTheirShareOfTrainingNamesWithCopyableMadeUpWordsAndLeaveHeldOutAlone()
    {
        var plain = new TaskGenerator(7);
        var pseudo = new TaskGenerator(7, pseudoSlotRate: 0.5);
        Assert.Equal(plain.Generate(300, Split.HeldOut).Select(Text), pseudo.Generate(300, Split.HeldOut).Select(Text));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskGenerator(7, 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TaskGenerator(7, double.NaN));

        var known = plain.SlotVocabularies.Values.SelectMany(v => v).ToHashSet(StringComparer.OrdinalIgnoreCase);
        (int Quoted, int MadeUp) CountNames(IEnumerable<Conversation> conversations)
        {
            int quoted = 0, madeUp = 0;
            foreach (var c in conversations.Where(c => c.Domain == "sql"))
            {
                string question = c.Turns.First(t => t.Role == "user").Content;
                foreach (Match m in Regex.Matches(c.Answer, @"'([^']+)'"))
                {
                    string value = m.Groups[1].Value;
                    if (value is "pending" or "shipped" or "delivered" || Regex.IsMatch(value, @"\d") || plain.SlotVocabularies["category"].Contains(value)) continue;
                    quoted++;
                    if (known.Contains(value)) continue;
                    madeUp++;
                    Assert.Contains(value, question); // the only way to write this SQL is to copy the name from the question
                    Assert.Matches(@"^[A-Z][a-z]+( [A-Z][a-z]+)?$", value);
                }
            }

            return (quoted, madeUp);
        }

        // Without the option every name is a vocabulary value; with rate 0.5 about half are made up.
        Assert.Equal(0, CountNames(plain.Generate(3000, Split.Train)).MadeUp);
        var train = pseudo.Generate(3000, Split.Train).ToList();
        var (quotedNames, madeUpNames) = CountNames(train);
        double share = (double)madeUpNames / quotedNames;
        output.WriteLine($"made-up names in training SQL: {madeUpNames} of {quotedNames} ({share:P1})");
        Assert.InRange(share, 0.4, 0.6);

        // Tool tasks keep the store's real values (their tools know no others), and held-out values stay out of training.
        Assert.All(train.Where(c => c.Domain == "tool" && c.Turns[1].ToolCall!.Name == "get_weather"),
            c => Assert.Contains(c.Turns[1].ToolCall!.Arguments["city"]!.ToString(), StoreDatabase.Cities));
        string trainText = string.Join("\n", train.Select(Text));
        foreach (var values in plain.SlotVocabularies.Values)
            for (int i = 4; i < values.Count; i += 5)
                Assert.DoesNotMatch($@"\b{Regex.Escape(values[i])}\b", trainText);
    }

    // A question's skeleton: its text with every slot value and number replaced by a placeholder.
    static HashSet<string> Skeletons(TaskGenerator gen, Split split, int count = 3000)
    {
        var values = gen.SlotVocabularies.Values.SelectMany(v => v).Concat(StoreDatabase.Statuses).OrderByDescending(v => v.Length).Select(Regex.Escape);
        var slot = new Regex($@"\b({string.Join("|", values)})\b|\d+");
        return gen.Generate(count, split).Select(c => c.Domain + ":" + slot.Replace(Question(c), "#")).ToHashSet();
    }

    static string Question(Conversation c) => c.Turns.First(t => t.Role == "user").Content;

    [Theory]
    [InlineData(Language.Basic)]
    [InlineData(Language.Rich)]
    public void HeldOutPhrasingsNeverOccurInTraining(Language language)
    {
        var gen = new TaskGenerator(5, language: language);
        var train = Skeletons(gen, Split.Train, language == Language.Rich ? 6000 : 3000);
        foreach (var split in new[] { Split.HeldOut, Split.HeldOutPhrasings })
        {
            var heldOut = Skeletons(gen, split);
            Assert.Empty(train.Intersect(heldOut));
            Assert.True(heldOut.Count >= 25, $"{heldOut.Count} held-out skeletons");
            output.WriteLine($"{language}: question skeletons: train {train.Count}, {split} {heldOut.Count}");
        }

        Assert.True(train.Count > 40, $"{train.Count} train skeletons");
        if (language == Language.Basic)
        {
            // Basic wording: the test and held-out-values splits ask in exactly the training phrasings.
            Assert.Subset(train, Skeletons(gen, Split.Test));
            Assert.Subset(train, Skeletons(gen, Split.HeldOutValues));
        }
    }

    [Theory]
    [InlineData(Language.Basic)]
    [InlineData(Language.Rich)]
    public void EachEvaluationSplitHoldsOutItsOwnPartOfTheValues(Language language)
    {
        // Per split: are names (and numbers) held-out values, and are months? null = the rule is not about it.
        var gen = new TaskGenerator(13, language: language);
        var names = new[] { "city", "category", "customer", "product", "person", "item" };
        foreach (var (split, heldOutNames, heldOutMonths) in new (Split, bool, bool)[]
                 {
                     (Split.Test, false, false), (Split.HeldOutValues, true, false), (Split.HeldOutPhrasings, false, false), (Split.HeldOut, true, true),
                 })
        {
            var tasks = gen.Generate(1200, split).ToList();
            string text = string.Join("\n", tasks.Select(Text));
            foreach (var (slot, values) in gen.SlotVocabularies)
            {
                bool heldOut = slot == "month_name" ? heldOutMonths : heldOutNames;
                Assert.True(names.Contains(slot) || slot == "month_name", slot);
                int usedValues = 0;
                for (int i = 0; i < values.Count; i++)
                {
                    bool used = Regex.IsMatch(text, $@"\b{Regex.Escape(values[i])}\b");
                    if (TaskGenerator.IsHeldOutIndex(i) != heldOut)
                        Assert.False(used, $"{split}: {slot} '{values[i]}' is a {(heldOut ? "training" : "held-out")} value");
                    else if (used) usedValues++;
                }
                Assert.True(usedValues > 0, $"{split}: no {slot} value is used");
            }

            var ids = tasks.Where(c => c.Turns.Count > 1 && c.Turns[1].ToolCall?.Name == "get_order_status")
                .Select(c => Convert.ToInt32(c.Turns[1].ToolCall!.Arguments["order_id"])).ToList();
            Assert.True(ids.Count > 50);
            Assert.All(ids, id => Assert.Equal(heldOutNames, TaskGenerator.IsHeldOutIndex(id - 1)));
        }

        // The test split is new draws, not the training set again.
        Assert.NotEqual(gen.Generate(300, Split.Train).Select(Text), gen.Generate(300, Split.Test).Select(Text));
    }

    [Fact]
    public void RichLanguageComposesManyMorePhrasingsAndLeavesValuesCopyable()
    {
        var basic = Skeletons(new TaskGenerator(17), Split.Train, 4000);
        var richGen = new TaskGenerator(17, language: Language.Rich);
        var rich = Skeletons(richGen, Split.Train, 4000);
        output.WriteLine($"question skeletons in 4,000 training tasks: basic {basic.Count}, rich {rich.Count}");
        Assert.True(rich.Count > 10 * basic.Count, $"rich {rich.Count} vs basic {basic.Count}");

        var train = richGen.Generate(4000, Split.Train).ToList();
        // Values are never touched by synonyms or typos: every quoted SQL value is in the question, as written.
        foreach (var c in train.Where(c => c.Domain == "sql"))
            foreach (Match m in Regex.Matches(c.Answer, @"'([^'%]+)'"))
                Assert.Contains(m.Groups[1].Value, Question(c));
        foreach (var c in train.Where(c => c.Domain == "math"))
            Assert.Contains(Regex.Match(c.Turns[1].Content, @"^(\d+)").Value, Question(c));

        // Each kind of variation occurs, and the reserved lead-ins and tails only in held-out phrasings.
        var questions = train.Select(Question).ToList();
        Assert.Contains(questions, q => q.StartsWith("Quick question: ", StringComparison.Ordinal));
        Assert.Contains(questions, q => q.EndsWith(" Thanks.", StringComparison.Ordinal));
        Assert.Contains(questions, q => q.StartsWith("Could you ", StringComparison.Ordinal) || q.StartsWith("Please ", StringComparison.Ordinal));
        Assert.Contains(questions, q => q.Contains("clients", StringComparison.Ordinal));
        Assert.Contains(questions, q => q.StartsWith("In ", StringComparison.Ordinal));
        var heldOut = richGen.Generate(2000, Split.HeldOutPhrasings).Select(Question).ToList();
        foreach (var reserved in QuestionWording.ReservedLeadIns)
        {
            Assert.DoesNotContain(questions, q => q.StartsWith(reserved, StringComparison.Ordinal));
            Assert.Contains(heldOut, q => q.StartsWith(reserved, StringComparison.Ordinal));
        }
        foreach (var reserved in QuestionWording.ReservedTails)
        {
            Assert.DoesNotContain(questions, q => q.EndsWith(reserved, StringComparison.Ordinal));
            Assert.Contains(heldOut, q => q.EndsWith(reserved, StringComparison.Ordinal));
        }

        // A basic generator draws nothing for wording: its corpus is the same whatever the rich one does.
        Assert.Equal(new TaskGenerator(17).Generate(200, Split.Train).Select(Text), new TaskGenerator(17, 0, Language.Basic).Generate(200, Split.Train).Select(Text));
    }

    [Fact]
    public void MixSelectsDomainsAndRejectsUnknownOnes()
    {
        var gen = new TaskGenerator(1);
        Assert.All(gen.Generate(200, Split.Train, new Dictionary<string, double> { ["math"] = 1 }), c => Assert.Equal("math", c.Domain));
        var counts = gen.Generate(3000, Split.Train).GroupBy(c => c.Domain).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(TaskGenerator.Domains, d => Assert.InRange(counts[d], 850, 1150));
        var skewed = gen.Generate(3000, Split.Train, new Dictionary<string, double> { ["sql"] = 3, ["tool"] = 1 }).Count(c => c.Domain == "sql");
        Assert.InRange(skewed, 2100, 2400);
        Assert.Throws<ArgumentException>(() => gen.Generate(1, Split.Train, new Dictionary<string, double> { ["poetry"] = 1 }));
        Assert.Throws<ArgumentException>(() => gen.Generate(1, Split.Train, new Dictionary<string, double> { ["sql"] = 0 }));
    }

    [Fact]
    public void EveryConversationRendersIntoWellFormedExamples()
    {
        var gen = new TaskGenerator(8);
        foreach (var c in gen.Generate(1500, Split.Train).Concat(gen.Generate(1500, Split.HeldOut)))
        {
            var examples = CorpusWriter.ToExamples(c).ToList();
            Assert.Equal(c.Domain == "tool" ? 2 : 1, examples.Count);
            Assert.All(examples, e => Assert.EndsWith("<|assistant|>\n", e.Prompt));
            Assert.All(examples, e => Assert.EndsWith("<|end|>", e.Completion));
            Assert.All(examples, e => Assert.DoesNotContain("<|end|>", e.Completion[..^7]));
            string first = examples[0].Completion[..^"<|end|>".Length];
            switch (c.Domain)
            {
                case "sql":
                    Assert.Equal(c.Answer, first);
                    Assert.StartsWith("<|system|>\nWrite one SQLite query.\ncustomers(", examples[0].Prompt);
                    break;
                case "math":
                    Assert.EndsWith("\nAnswer: " + c.Answer, first);
                    Assert.Matches(@"^(\d+ [-+*/] \d+ = \d+\n){2,3}Answer: \d+$", first);
                    break;
                case "tool":
                    var call = CllmChatFormat.ParseToolCall(first);
                    Assert.NotNull(call);
                    Assert.Equal(c.Turns[1].ToolCall, call);
                    Assert.Equal(c.Answer, call.ToJson());
                    Assert.DoesNotContain("error", c.Turns[2].Content);
                    Assert.Equal(DemoTools.Invoke(call, gen.Database), c.Turns[2].Content);
                    Assert.Matches(@"^[A-Z][^\n]*\.$", examples[1].Answer);
                    break;
            }
        }
    }

    [Fact]
    public void MathAnswersAreCorrect()
    {
        // Independent check: re-evaluate each step line and confirm the chain ends at the answer.
        foreach (var c in new TaskGenerator(4).Generate(600, Split.Train, new Dictionary<string, double> { ["math"] = 1 }))
        {
            long last = -1;
            foreach (var line in c.Turns[1].Content.Split('\n')[..^1])
            {
                var m = Regex.Match(line, @"^(\d+) ([-+*/]) (\d+) = (\d+)$");
                long x = long.Parse(m.Groups[1].Value), y = long.Parse(m.Groups[3].Value), z = long.Parse(m.Groups[4].Value);
                long expected = m.Groups[2].Value switch { "+" => x + y, "-" => x - y, "*" => x * y, _ => x / y };
                Assert.Equal(expected, z);
                if (m.Groups[2].Value == "/") Assert.Equal(0, x % y);
                Assert.True(z >= 0);
                last = z;
            }

            Assert.Equal(last.ToString(), c.Answer);
            // The question's numbers are the ones the steps start from.
            var first = Regex.Match(c.Turns[1].Content, @"^(\d+) . (\d+)");
            Assert.Contains(first.Groups[1].Value, c.Turns[0].Content);
        }
    }

    [Fact]
    public void RenderedLengthsFitTheContext()
    {
        string dir = Path.Combine(Path.GetTempPath(), "cllm-data-tok-" + Guid.NewGuid().ToString("N"));
        BuiltInTokenizers.WriteSentencePiece4k(dir);
        var tokenizer = TextTokenizer.Load(dir);
        Directory.Delete(dir, recursive: true);
        var gen = new TaskGenerator(9);
        var all = gen.Generate(3000, Split.Train).Concat(gen.Generate(1000, Split.HeldOut)).SelectMany(CorpusWriter.ToExamples).ToList();
        foreach (var domain in all.GroupBy(e => e.Domain))
        {
            var chars = domain.Select(e => (e.Prompt + e.Completion).Length).Order().ToList();
            var prompts = domain.Select(e => e.Prompt.Length).ToList();
            // The English 4k tokenizer splits each chat marker into several pieces, so this over-counts.
            var tokens = domain.Select(e => tokenizer.Encode(e.Prompt + e.Completion).Length).ToList();
            output.WriteLine($"{domain.Key,-5} examples {chars.Count,5}: chars mean {chars.Average(),5:F0} median {chars[chars.Count / 2],4} max {chars[^1],4}; " +
                $"prompt max {prompts.Max(),4}; sp4k tokens mean {tokens.Average(),4:F0} max {tokens.Max(),4}");
            Assert.True(tokens.Max() < 400, $"{domain.Key}: {tokens.Max()} tokens");
            int limit = domain.Key switch { "sql" => 900, "math" => 350, _ => 700 };
            Assert.True(chars[^1] <= limit, $"{domain.Key}: longest example {chars[^1]} chars");
        }
    }

    [Fact]
    public void PrintExamples()
    {
        var gen = new TaskGenerator(2);
        foreach (var split in new[] { Split.Train, Split.HeldOut })
            foreach (var domain in TaskGenerator.Domains)
            {
                var c = gen.Generate(1, split, new Dictionary<string, double> { [domain] = 1 }).Single();
                output.WriteLine($"===== {domain} / {split} (answer: {c.Answer})\n{Text(c)}");
            }
    }
}
