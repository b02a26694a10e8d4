using Cllm.Decoding;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Decoding;

/// <summary>Jacobi decoding must give greedy autoregressive decoding's tokens exactly, in float32.</summary>
public sealed class LosslessTests(ITestOutputHelper output)
{
    static readonly int[] NoStop = [];

    [Fact]
    public void JacobiEqualsAutoregressiveOnManyModelsSeedsAndPrompts()
    {
        var cases = 0;
        var mismatches = new List<string>();
        var totalTokens = 0;
        var totalPasses = 0;
        var distinct = new HashSet<int>();
        foreach (var shape in TestModels.Shapes)
            for (var seed = 1; seed <= 3; seed++)
            {
                using var model = TestModels.Create(shape, seed);
                using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
                for (var p = 0; p < 3; p++)
                {
                    var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 4 + 13 * p, seed * 100 + p);
                    var ar = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 64 }, out _);
                    foreach (var (block, guess) in new[] { (16, JacobiGuess.RandomFromContext), (5, JacobiGuess.PromptLookup) })
                    {
                        var jacobi = TestModels.Generate(model, cache, prompt, new GenerationOptions
                        {
                            Decoder = DecoderKind.Jacobi, MaxNewTokens = 64, BlockSize = block, InitialGuess = guess, Seed = seed,
                        }, out var stats);
                        cases++;
                        if (!ar.SequenceEqual(jacobi))
                            mismatches.Add($"{shape} seed {seed} prompt {p} n={block} {guess}: AR [{string.Join(",", ar)}] vs Jacobi [{string.Join(",", jacobi)}]");
                        Assert.Equal(64, jacobi.Length);
                        Assert.True(stats.ForwardPasses <= 64);
                        totalTokens += stats.GeneratedTokens;
                        totalPasses += stats.ForwardPasses;
                    }
                    distinct.UnionWith(ar);
                }
            }
        output.WriteLine($"{cases} cases, {totalTokens} tokens in {totalPasses} passes, {distinct.Count} distinct tokens");
        Assert.True(cases >= 50);
        Assert.Empty(mismatches);
        // The outputs must be varied, else agreement would prove little.
        Assert.True(distinct.Count > 200, $"only {distinct.Count} distinct tokens in the outputs");
    }

    [Fact]
    public void LookaheadEqualsAutoregressiveAndItsBranchesAreUsed()
    {
        var cases = 0;
        var mismatches = new List<string>();
        int pooled = 0, tokens = 0, passes = 0;
        foreach (var shape in TestModels.Shapes)
            for (var seed = 1; seed <= 2; seed++)
            {
                using var model = TestModels.Create(shape, seed);
                using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
                for (var p = 0; p < 3; p++)
                {
                    // Random prompts, and one that repeats itself so pooled n-grams have something to match.
                    var prompt = p < 2
                        ? TestModels.RandomPrompt(model.Config.VocabSize, 5 + 17 * p, seed * 10 + p)
                        : [.. Enumerable.Repeat(TestModels.RandomPrompt(model.Config.VocabSize, 7, seed), 4).SelectMany(x => x)];
                    var ar = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 64 }, out _);
                    foreach (var (block, n, g) in new[] { (16, 4, 4), (4, 3, 8), (2, 6, 2) })
                    {
                        var lookahead = TestModels.Generate(model, cache, prompt, new GenerationOptions
                        {
                            Decoder = DecoderKind.Lookahead, MaxNewTokens = 64, BlockSize = block, NgramSize = n, NgramsPerKey = g, Seed = seed,
                        }, out var stats);
                        cases++;
                        if (!ar.SequenceEqual(lookahead))
                            mismatches.Add($"{shape} seed {seed} prompt {p} W={block} N={n} G={g}: AR [{string.Join(",", ar)}] vs lookahead [{string.Join(",", lookahead)}]");
                        Assert.Equal(stats.GeneratedTokens - stats.ForwardPasses, stats.FastForwardedTokens);
                        pooled += stats.PooledTokens;
                        tokens += stats.GeneratedTokens;
                        passes += stats.ForwardPasses;
                    }
                }
            }
        output.WriteLine($"{cases} cases, {tokens} tokens in {passes} passes, {pooled} tokens from pooled n-grams");
        Assert.Empty(mismatches);
        // The branches must win sometimes, else agreement would not test them.
        Assert.True(pooled > 40, $"only {pooled} tokens came from pooled n-grams");
    }

    [Fact]
    public void StopTokenEndsBothDecodersAtTheSamePlace()
    {
        using var model = TestModels.Create("mha", 4);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 10, 9);
        var free = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 40 }, out _);
        var stop = free[17];
        var cut = Array.IndexOf(free, stop) + 1;
        foreach (var decoder in Enum.GetValues<DecoderKind>())
        {
            var stopped = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = decoder, MaxNewTokens = 40, StopTokenIds = [stop] }, out var stats);
            Assert.Equal(free.Take(cut), stopped);
            Assert.Equal(FinishReason.Stop, stats.FinishReason);
            // Counters count only emitted tokens, also when the stop cut a pass short.
            Assert.Equal(stats.GeneratedTokens - stats.ForwardPasses, stats.FastForwardedTokens);
        }
    }

    [Fact]
    public void MaxTokensAndContextEndWithLength()
    {
        using var model = TestModels.Create("qwen2-bias", 4);
        using var cache = new KvCache(model.Config, 40, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 30, 9);
        foreach (var decoder in Enum.GetValues<DecoderKind>())
        {
            var tokens = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = decoder, MaxNewTokens = 7 }, out var stats);
            Assert.Equal(7, tokens.Length);
            Assert.Equal(FinishReason.Length, stats.FinishReason);
            // 30 prompt + 11 new would need 41 positions; the last token needs no cache entry, so 11 fit.
            tokens = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = decoder, MaxNewTokens = 100 }, out stats);
            Assert.Equal(11, tokens.Length);
            Assert.Equal(FinishReason.Length, stats.FinishReason);
        }
        var e = Assert.Throws<ArgumentException>(() =>
            Decoder.Generate(model, cache, TestModels.RandomPrompt(512, 40, 1), new GenerationOptions(), new DecodingStats(), NoStop).ToList());
        Assert.Contains("40 tokens", e.Message);
    }

    [Fact]
    public void CancellationStopsBetweenPassesAndTheNextRequestWorks()
    {
        using var model = TestModels.Create("mha", 5);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 10, 2);
        using var cts = new CancellationTokenSource();
        var stats = new DecodingStats();
        var received = 0;
        foreach (var chunk in Decoder.Generate(model, cache, prompt, new GenerationOptions { MaxNewTokens = 100, BlockSize = 4 }, stats, NoStop, cts.Token))
        {
            received += chunk.Tokens.Length;
            if (stats.ForwardPasses == 3) cts.Cancel();
        }
        Assert.Equal(FinishReason.Cancelled, stats.FinishReason);
        Assert.Equal(3, stats.ForwardPasses);
        Assert.Equal(stats.GeneratedTokens, received);

        var full = TestModels.Generate(model, cache, prompt, new GenerationOptions { MaxNewTokens = 20 }, out var s2);
        Assert.Equal(20, full.Length);
        Assert.Equal(FinishReason.Length, s2.FinishReason);
    }

    [Fact]
    public void SeededSamplingIsReproducibleAndDiffersAcrossSeeds()
    {
        using var model = TestModels.Create("gqa-tied", 6);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 8, 2);
        GenerationOptions Sampling(long seed) => new()
        {
            Decoder = DecoderKind.Autoregressive, MaxNewTokens = 32, Temperature = 1.5f, TopP = 0.95f, TopK = 50, Seed = seed,
        };
        var a = TestModels.Generate(model, cache, prompt, Sampling(1), out _);
        var b = TestModels.Generate(model, cache, prompt, Sampling(1), out _);
        var c = TestModels.Generate(model, cache, prompt, Sampling(2), out _);
        var greedy = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 32 }, out _);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a, greedy);
        // top-k 1 is greedy whatever the temperature.
        var topOne = TestModels.Generate(model, cache, prompt, Sampling(3) with { TopK = 1 }, out _);
        Assert.Equal(greedy, topOne);
    }

    [Fact]
    public void StatsCountPassesAndTokens()
    {
        using var model = TestModels.Create("mha", 8);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        // A repetitive prompt: prompt lookup guesses well once the model starts repeating.
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 12, 4);
        TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 50 }, out var ar);
        Assert.Equal(50, ar.ForwardPasses);
        Assert.Equal(1.0, ar.TokensPerPass);
        TestModels.Generate(model, cache, prompt, new GenerationOptions { MaxNewTokens = 50, InitialGuess = JacobiGuess.PromptLookup }, out var jacobi);
        Assert.Equal(50, jacobi.GeneratedTokens);
        Assert.Equal(jacobi.ForwardPasses, jacobi.AcceptedPerPass.Count);
        Assert.Equal(50, jacobi.AcceptedPerPass.Sum());
        Assert.Equal(jacobi.GeneratedTokens - jacobi.ForwardPasses, jacobi.FastForwardedTokens);
        Assert.True(jacobi.StationaryTokens <= jacobi.FastForwardedTokens);
        Assert.Equal(jacobi.ForwardPasses, jacobi.AcceptedHistogram().Sum());
        output.WriteLine($"jacobi: {jacobi.ForwardPasses} passes, histogram [{string.Join(",", jacobi.AcceptedHistogram())}], " +
                         $"fast-forwarded {jacobi.FastForwardedTokens}, stationary {jacobi.StationaryTokens}");
    }
}
