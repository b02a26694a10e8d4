using System.Diagnostics;
using System.Text;
using Cllm.Constraints;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Constraints;

/// <summary>The trie walk against the plain definition (every token's text stepped through the state), on real tokenizers.</summary>
public sealed class TokenMaskTests(ITestOutputHelper output)
{
    internal static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Cllm.sln"))) dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("no Cllm.sln above the tests");
        return dir;
    }

    internal static TextTokenizer DefaultTokenizer => TextTokenizer.Load(Path.Combine(RepoRoot, "models", "cllm-tiny"));

    static IEnumerable<(string Name, TextTokenizer Tokenizer)> Tokenizers()
    {
        yield return ("cllm-tiny (SentencePiece 1k)", DefaultTokenizer);
        using var folder = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(folder.Path);
        yield return ("built-in SentencePiece 4k", TextTokenizer.Load(folder.Path));
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
        yield return ("byte-level BPE fixture", TextTokenizer.Load(Path.Combine(fixtures, "bpe")));
        yield return ("tiktoken fixture", TextTokenizer.Load(Path.Combine(fixtures, "tiktoken")));
    }

    const string Schema = """
        {"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]},"days":{"type":"integer"},
         "tags":{"type":"array","items":{"type":"string"}}},"required":["city","tags"],"additionalProperties":false}
        """;

    static readonly (Grammar Grammar, string Text)[] Cases =
    [
        (Grammar.Json(objectOnly: true), "{\"a\": [1, -2.5e3, {\"b\": null}], \"c\": \"d\u00e9 \u4e16\u754c \\\"q\\\"\"}"),
        (Grammar.ToolCall([new ToolSchema("get_weather", Schema), new ToolSchema("get_time", null)]),
            "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo, Norway\", \"unit\": \"c\", \"tags\": [\"x y\"]}}</tool_call>"),
    ];

    [Fact]
    public void TrieMaskEqualsEveryTokenSteppedOnItsOwn()
    {
        var compared = 0;
        foreach (var (name, tokenizer) in Tokenizers())
        {
            var vocabulary = TokenVocabulary.For(tokenizer);
            Assert.Same(vocabulary, TokenVocabulary.For(tokenizer)); // built once per tokenizer
            foreach (var (grammar, text) in Cases)
            {
                var constraint = TokenConstraint.Create(grammar, vocabulary);
                var bytes = Encoding.UTF8.GetBytes(text);
                for (var cut = 0; cut <= bytes.Length; cut += 3)
                {
                    var state = constraint.Initial.Step(bytes.AsSpan(0, cut))!;
                    foreach (var budget in new[] { int.MaxValue, state.MinRemaining + 2 })
                    {
                        var atStart = cut == 0;
                        var fast = new bool[vocabulary.Size];
                        var count = vocabulary.Mark(state, budget, atStart, fast);
                        var slow = Enumerable.Range(0, vocabulary.Size).Select(id =>
                            vocabulary.TextOf(id, atStart) is { Length: > 0 } t && state.Step(t) is { } after && after.MinRemaining <= budget).ToArray();
                        var diff = Enumerable.Range(0, vocabulary.Size).Where(id => fast[id] != slow[id]).Take(5).ToList();
                        Assert.True(diff.Count == 0, $"{name}, after '{Encoding.UTF8.GetString(bytes, 0, cut)}', budget {budget}: ids " +
                            string.Join(", ", diff.Select(id => $"{id} '{tokenizer.IdToToken(id)}' fast {fast[id]}")));
                        Assert.Equal(slow.Count(x => x), count);
                        compared++;
                    }
                }
            }
            // Markers are never text; the tool-call tag of the default model is.
            foreach (var eos in tokenizer.EosIds) Assert.Null(vocabulary.TextOf(eos));
        }
        Assert.True(compared > 300);
    }

    /// <summary>A cursor keeps its state's last mask and reuses it while the budget allows: with budgets falling token by
    /// token (as in a generation), every mask must still equal a fresh one.</summary>
    [Fact]
    public void ReusedMasksEqualFreshOnesAsTheBudgetFalls()
    {
        var tokenizer = DefaultTokenizer;
        var vocabulary = TokenVocabulary.For(tokenizer);
        var (grammar, text) = Cases[0];
        var constraint = TokenConstraint.Create(grammar, vocabulary);
        var ids = tokenizer.Encode(text, addSpecial: false);
        var cursor = constraint.Start();
        var limit = ids.Length + 30;
        var reused = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            var state = constraint.Initial.Step(ids.Take(i).SelectMany((id, k) => vocabulary.TextOf(id, k == 0)!).ToArray())!;
            foreach (var budget in new[] { limit - i, limit - i - 1, state.MinRemaining, state.MinRemaining + 1 })
            {
                var hit = cursor.State.Mask is not null;
                var allowed = cursor.Allowed(vocabulary.Size, budget, tokenizer.EosIds);
                var fresh = new bool[vocabulary.Size];
                vocabulary.Mark(cursor.State, budget, i == 0, fresh);
                Assert.Equal(fresh, allowed);
                if (hit) reused++;
            }
            cursor = cursor.Advance(ids[i]);
        }
        Assert.True(reused > 0);
    }

    [Fact]
    public void DefaultModelVocabularyMatchesTheTokenizersDecoding()
    {
        var tokenizer = DefaultTokenizer;
        var vocabulary = TokenVocabulary.For(tokenizer);
        Assert.Equal("<tool_call>", Encoding.UTF8.GetString(vocabulary.TextOf(tokenizer.TokenToId("<tool_call>")!.Value)!));
        // Whole texts: the concatenated token bytes are what the tokenizer decodes (first piece without its space).
        foreach (var text in new[] { "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}", " leading space", "caf\u00e9 \u4e16" })
        {
            var ids = tokenizer.Encode(text, addSpecial: false);
            var bytes = ids.SelectMany((id, i) => vocabulary.TextOf(id, atStart: i == 0)!).ToArray();
            Assert.Equal(tokenizer.Decode(ids), Encoding.UTF8.GetString(bytes));
        }
    }

    /// <summary>Milliseconds per mask on the default model's vocabulary; with CLLM_MASK_TOKENIZERS (folders, ';'-separated)
    /// also on those (for the 32k-152k measurements in docs/architecture.md).</summary>
    [Fact]
    public void MaskTimes()
    {
        var folders = new List<string> { Path.Combine(RepoRoot, "models", "cllm-tiny") };
        if (Environment.GetEnvironmentVariable("CLLM_MASK_TOKENIZERS") is { Length: > 0 } extra)
            folders.AddRange(extra.Split(';', StringSplitOptions.RemoveEmptyEntries));
        foreach (var folder in folders)
        {
            var tokenizer = TextTokenizer.Load(folder);
            var clock = Stopwatch.StartNew();
            var vocabulary = TokenVocabulary.For(tokenizer);
            var build = clock.Elapsed.TotalMilliseconds;
            foreach (var (grammar, text) in Cases)
            {
                var constraint = TokenConstraint.Create(grammar, vocabulary);
                var bytes = Encoding.UTF8.GetBytes(text);
                var states = Enumerable.Range(1, bytes.Length).Select(cut => constraint.Initial.Step(bytes.AsSpan(0, cut))!).ToList();
                var allowed = new bool[vocabulary.Size];
                vocabulary.Mark(states[0], int.MaxValue, false, allowed); // warm-up
                clock.Restart();
                var total = 0L;
                foreach (var state in states)
                {
                    Array.Clear(allowed);
                    total += vocabulary.Mark(state, int.MaxValue, false, allowed);
                }
                var perMask = clock.Elapsed.TotalMilliseconds / states.Count;
                output.WriteLine($"{Path.GetFileName(folder.TrimEnd('/'))}: {vocabulary.Size} tokens, {vocabulary.TrieNodes} trie nodes, built in {build:F0} ms; " +
                                 $"{grammar}: {perMask:F3} ms per mask over {states.Count} states (mean {total / states.Count} allowed)");
                if (vocabulary.Size <= 4096) Assert.True(perMask < 20, $"{perMask} ms per mask on a {vocabulary.Size}-token vocabulary");
            }
        }
    }
}
