using Cllm.Decoding;
using Cllm.Model;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Decoding;

/// <summary>Jacobi and lookahead sampling must draw every token from autoregressive sampling's distribution (and,
/// with the same seed, draw autoregressive sampling's very tokens).</summary>
public sealed class SamplingTests(ITestOutputHelper output)
{
    const int Vocab = 8, Samples = 2000;
    static readonly int[] Prompt = LoopPrompt();

    /// <summary>The micro model's own greedy loop: its likely continuations then repeat the prompt, so prompt-lookup
    /// guesses and pooled n-grams are often accepted and often rejected, and both paths are tested.</summary>
    static int[] LoopPrompt()
    {
        using var model = MicroModel();
        using var cache = new KvCache(model.Config, 64, model.DType, model.Device);
        return TestModels.Generate(model, cache, [1, 5, 2], new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 40 }, out _)[^10..];
    }

    /// <summary>A micro model with an 8-token vocabulary, so the exact joint distribution of the first four new
    /// tokens (4096 outcomes) can be computed and compared with thousands of seeded runs by a chi-square test.</summary>
    static Transformer MicroModel()
    {
        var model = new Transformer(ModelConfig.Preset("tiny") with { VocabSize = Vocab });
        model.InitializeRandom(3, 0.4);
        model.eval();
        return model;
    }

    public static TheoryData<string, float, float, int> Settings() => new()
    {
        { "jacobi", 0.7f, 1f, 0 },
        { "lookahead", 1.0f, 0.9f, 5 },
        { "autoregressive", 0.7f, 1f, 0 },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void FirstTokensFollowTheExactDistribution(string decoder, float temperature, float topP, int topK)
    {
        using var model = MicroModel();
        using var cache = new KvCache(model.Config, 64, model.DType, model.Device);
        var options = new GenerationOptions
        {
            Decoder = Enum.Parse<DecoderKind>(decoder, ignoreCase: true), MaxNewTokens = 4, BlockSize = 4, InitialGuess = JacobiGuess.PromptLookup,
            NgramSize = 3, NgramsPerKey = 4, Temperature = temperature, TopP = topP, TopK = topK,
        };
        var counts = new int[Vocab * Vocab * Vocab * Vocab];
        int fastForwarded = 0, partial = 0;
        for (var seed = 1; seed <= Samples; seed++)
        {
            var tokens = TestModels.Generate(model, cache, Prompt, options with { Seed = seed }, out var stats);
            Assert.Equal(4, tokens.Length);
            counts[((tokens[0] * Vocab + tokens[1]) * Vocab + tokens[2]) * Vocab + tokens[3]]++;
            fastForwarded += stats.FastForwardedTokens;
            if (stats.ForwardPasses > 2) partial++; // some guess was rejected
        }

        var exact = ExactJoint(model, options);
        var (statistic, dof) = ChiSquare(counts, exact, Samples);
        var critical = ChiSquareCritical(dof);
        // The same samples against the distribution at another temperature: the test must be able to fail.
        var (wrong, wrongDof) = ChiSquare(counts, ExactJoint(model, options with { Temperature = temperature * 1.3f }), Samples);
        output.WriteLine($"prompt [{string.Join(",", Prompt)}]");
        output.WriteLine($"{decoder} T={temperature} top-p={topP} top-k={topK}: chi2 {statistic:F1} (dof {dof}, critical {critical:F1} at p = 0.001); " +
                         $"against T x 1.3: {wrong:F1} (critical {ChiSquareCritical(wrongDof):F1}); fast-forwarded {fastForwarded}, runs with a rejected guess {partial}");
        Assert.True(statistic < critical, $"chi-square {statistic:F1} >= {critical:F1}: not the model's distribution");
        Assert.True(wrong > ChiSquareCritical(wrongDof), "the test cannot tell a 30% temperature change apart");
        if (options.Decoder != DecoderKind.Autoregressive)
        {
            // Both branches of the acceptance rule ran: guesses accepted in some runs, rejected in others.
            Assert.True(fastForwarded > Samples / 10, $"only {fastForwarded} guessed tokens accepted");
            Assert.True(partial > Samples / 10, $"only {partial} runs rejected a guess");
        }
    }

    [Fact]
    public void WithTheSameSeedJacobiAndLookaheadSampleAutoregressiveSamplingsTokens()
    {
        var cases = 0;
        var mismatches = new List<string>();
        int tokens = 0, passes = 0;
        foreach (var shape in TestModels.Shapes)
            for (var seed = 1; seed <= 2; seed++)
            {
                using var model = TestModels.Create(shape, seed);
                using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
                for (var p = 0; p < 2; p++)
                {
                    var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 6 + 11 * p, seed * 10 + p);
                    var sampling = new GenerationOptions { MaxNewTokens = 48, Temperature = 0.6f + 0.4f * p, TopP = 0.95f, Seed = 100 + seed * 10 + p };
                    var ar = TestModels.Generate(model, cache, prompt, sampling with { Decoder = DecoderKind.Autoregressive }, out _);
                    foreach (var decoder in new[] { DecoderKind.Jacobi, DecoderKind.Lookahead })
                    {
                        var other = TestModels.Generate(model, cache, prompt, sampling with { Decoder = decoder, BlockSize = 8, NgramSize = 3 }, out var stats);
                        cases++;
                        tokens += stats.GeneratedTokens;
                        passes += stats.ForwardPasses;
                        if (!ar.SequenceEqual(other))
                            mismatches.Add($"{shape} seed {seed} prompt {p} {decoder}: AR [{string.Join(",", ar)}] vs [{string.Join(",", other)}]");
                    }
                }
            }
        output.WriteLine($"{cases} cases, {tokens} sampled tokens in {passes} passes");
        Assert.Empty(mismatches);
        Assert.True(passes < tokens, "no guessed token was ever accepted");
    }

    [Theory]
    [InlineData(DecoderKind.Jacobi)]
    [InlineData(DecoderKind.Lookahead)]
    public void SeededSamplingIsReproducibleAndDiffersAcrossSeeds(DecoderKind decoder)
    {
        using var model = TestModels.Create("gqa-tied", 6);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 8, 2);
        GenerationOptions Sampling(long seed) => new() { Decoder = decoder, MaxNewTokens = 40, Temperature = 0.8f, TopP = 0.95f, Seed = seed };
        var a = TestModels.Generate(model, cache, prompt, Sampling(1), out _);
        var b = TestModels.Generate(model, cache, prompt, Sampling(1), out _);
        var c = TestModels.Generate(model, cache, prompt, Sampling(2), out _);
        var greedy = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = decoder, MaxNewTokens = 40 }, out _);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.NotEqual(a, greedy);
        Assert.Equal(40, a.Length);
        // top-k 1 is greedy whatever the temperature, so it must give the greedy tokens.
        Assert.Equal(greedy, TestModels.Generate(model, cache, prompt, Sampling(3) with { TopK = 1 }, out _));
    }

    /// <summary>P(t1, t2, t3, t4) after the prompt, from one batched causal pass over all 512 three-token prefixes.</summary>
    static double[] ExactJoint(Transformer model, GenerationOptions options)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        const int prefixes = Vocab * Vocab * Vocab;
        var rows = new long[prefixes, Prompt.Length + 3];
        for (var i = 0; i < prefixes; i++)
        {
            for (var j = 0; j < Prompt.Length; j++) rows[i, j] = Prompt[j];
            rows[i, Prompt.Length] = i / (Vocab * Vocab);
            rows[i, Prompt.Length + 1] = i / Vocab % Vocab;
            rows[i, Prompt.Length + 2] = i % Vocab;
        }
        var logits = model.ForwardTraining(tensor(rows)).narrow(1, Prompt.Length - 1, 4).to(float64).contiguous();
        var flat = logits.data<double>().ToArray(); // [prefix, 4 positions, Vocab]
        // The sampler's own filter is not used: each row's distribution comes from the textbook definitions.
        var p = new double[flat.Length];
        for (var row = 0; row < flat.Length / Vocab; row++)
            ReferenceDistribution.Of(flat.AsSpan(row * Vocab, Vocab).ToArray(), options.Temperature, options.TopK, options.TopP)
                .CopyTo(p, row * Vocab);
        double P(int prefix, int position, int token) => p[(prefix * 4 + position) * Vocab + token];
        var joint = new double[prefixes * Vocab];
        for (var t1 = 0; t1 < Vocab; t1++)
            for (var t2 = 0; t2 < Vocab; t2++)
                for (var t3 = 0; t3 < Vocab; t3++)
                    for (var t4 = 0; t4 < Vocab; t4++)
                        joint[((t1 * Vocab + t2) * Vocab + t3) * Vocab + t4] = P(0, 0, t1) * P(t1 * Vocab * Vocab, 1, t2)
                            * P((t1 * Vocab + t2) * Vocab, 2, t3) * P((t1 * Vocab + t2) * Vocab + t3, 3, t4);
        return joint;
    }

    /// <summary>Pearson's statistic over the outcomes, those expected fewer than 5 times pooled into one cell.</summary>
    internal static (double Statistic, int Dof) ChiSquare(int[] counts, double[] p, int n)
    {
        double statistic = 0, pooledExpected = 0;
        int pooledObserved = 0, cells = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            var expected = p[i] * n;
            if (expected < 5) { pooledExpected += expected; pooledObserved += counts[i]; continue; }
            statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
            cells++;
        }
        if (pooledExpected > 0)
        {
            statistic += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected;
            cells++;
        }
        return (statistic, cells - 1);
    }

    /// <summary>The chi-square quantile at p = 0.001 (Wilson-Hilferty).</summary>
    internal static double ChiSquareCritical(int dof)
    {
        const double z = 3.09;
        var a = 2.0 / (9 * dof);
        return dof * Math.Pow(1 - a + z * Math.Sqrt(a), 3);
    }
}
