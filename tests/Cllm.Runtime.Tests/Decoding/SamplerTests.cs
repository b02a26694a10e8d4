using Cllm.Decoding;
using Cllm.Native;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Decoding;

/// <summary>The sampler on known logits, against <see cref="ReferenceDistribution"/> (the textbook definitions).</summary>
public sealed class SamplerTests
{
    // Probabilities at temperature 1: about 0.46, 0.25, 0.17, 0.085, 0.031, 0.004 (distinct, no ties).
    static readonly double[] Logits = [2.0, 1.4, 1.0, 0.3, -0.7, -2.7];

    public static TheoryData<float, int, float> Settings() => new()
    {
        { 1.0f, 0, 1.0f },
        { 0.5f, 0, 1.0f },   // sharper: temperature divides the logits once
        { 2.0f, 0, 1.0f },   // flatter
        { 1.0f, 3, 1.0f },   // top-k alone
        { 1.0f, 0, 0.8f },   // top-p: 0.46 + 0.25 < 0.8, so the third token crosses 0.8 and is kept
        { 1.0f, 0, 0.6f },   // the second token crosses 0.6
        { 0.7f, 4, 0.9f },   // all three, in HF's order: temperature, top-k, then top-p on the renormalised rest
        { 1.5f, 2, 0.3f },   // top-p below the top token's mass keeps the top token only
    };

    static double[] SamplerProbabilities(double[] logits, GenerationOptions options)
    {
        TorchNative.EnsureLoaded();
        using var probs = Sampler.Probabilities(tensor(logits, float32).unsqueeze(0), options).to(float64);
        var p = probs.data<double>().ToArray();
        var total = p.Sum();
        return [.. p.Select(x => x / total)];
    }

    [Theory]
    [MemberData(nameof(Settings))]
    public void FilteredDistributionIsTheTextbookOne(float temperature, int topK, float topP)
    {
        var options = new GenerationOptions { Temperature = temperature, TopK = topK, TopP = topP };
        var expected = ReferenceDistribution.Of(Logits, temperature, topK, topP);
        var actual = SamplerProbabilities(Logits, options);
        for (var i = 0; i < Logits.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-6,
                $"T={temperature} k={topK} p={topP}: token {i} has {actual[i]:F6}, the textbook gives {expected[i]:F6}");
    }

    [Fact]
    public void TopPKeepsTheTokenThatCrossesTheThresholdAndNothingAfterIt()
    {
        // Softmax of ln(0.5), ln(0.3), ln(0.15), ln(0.05) is exactly that distribution.
        double[] logits = [Math.Log(0.5), Math.Log(0.3), Math.Log(0.15), Math.Log(0.05)];
        var p = SamplerProbabilities(logits, new GenerationOptions { Temperature = 1, TopP = 0.7f });
        // 0.5 < 0.7, 0.5 + 0.3 >= 0.7: the first two, renormalised to 0.625 and 0.375.
        Assert.Equal(0.625, p[0], 5);
        Assert.Equal(0.375, p[1], 5);
        Assert.Equal(0, p[2]);
        Assert.Equal(0, p[3]);
        // Below the top token's mass, the top token alone.
        Assert.Equal([1.0, 0, 0, 0], SamplerProbabilities(logits, new GenerationOptions { Temperature = 1, TopP = 0.4f }));
    }

    [Fact]
    public void TemperatureDividesTheLogitsOnce()
    {
        double[] logits = [1.0, 0.0];
        // softmax([1, 0] / 0.5) = [e^2, 1] / (e^2 + 1).
        var p = SamplerProbabilities(logits, new GenerationOptions { Temperature = 0.5f });
        Assert.Equal(Math.Exp(2) / (Math.Exp(2) + 1), p[0], 6);
    }

    /// <summary>Thousands of draws from one row (each token index has its own uniform number) against the textbook
    /// distribution by a chi-square test; the same counts against a 30% different temperature must be rejected.</summary>
    [Theory]
    [InlineData(0.8f, 0, 1.0f)]
    [InlineData(1.2f, 4, 0.85f)]
    public void DrawsFollowTheTextbookDistribution(float temperature, int topK, float topP)
    {
        const int draws = 20_000;
        TorchNative.EnsureLoaded();
        var options = new GenerationOptions { Temperature = temperature, TopK = topK, TopP = topP, Seed = 17 };
        using var row = tensor(Logits, float32).unsqueeze(0).expand(draws, Logits.Length).contiguous();
        var chosen = new Sampler(options).Choose(row, [.. Enumerable.Range(0, draws)]);
        var counts = new int[Logits.Length];
        foreach (var id in chosen) counts[id]++;
        var expected = ReferenceDistribution.Of(Logits, temperature, topK, topP);
        for (var i = 0; i < counts.Length; i++)
            if (expected[i] == 0) Assert.Equal(0, counts[i]); // filtered-out tokens are never drawn

        var (statistic, dof) = SamplingTests.ChiSquare(counts, expected, draws);
        Assert.True(statistic < SamplingTests.ChiSquareCritical(dof),
            $"chi-square {statistic:F1} over {dof} dof: counts [{string.Join(",", counts)}]");
        var hotter = ReferenceDistribution.Of(Logits, temperature * 1.3, topK, topP);
        var (wrong, wrongDof) = SamplingTests.ChiSquare(counts, hotter, draws);
        Assert.True(wrong > SamplingTests.ChiSquareCritical(wrongDof), "the test cannot tell a 30% temperature change apart");
    }
}
