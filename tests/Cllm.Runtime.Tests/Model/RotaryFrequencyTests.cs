using Cllm.Model;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>
/// The rotation tables against the frequencies written out here from the papers' and Hugging Face's definitions
/// (not from the library's code): plain RoPE, linear interpolation, Llama 3's banded scaling and dynamic NTK at the
/// stretched length. llama.cpp's export refuses dynamic scaling, so this is its only independent check.
/// </summary>
public sealed class RotaryFrequencyTests
{
    const int HeadDim = 8, Positions = 250;

    static ModelConfig Config(RopeScaling? scaling) => ModelConfig.Preset("tiny") with
    {
        HiddenSize = 32, NumHeads = 4, NumKvHeads = 4, HeadDim = HeadDim, RopeTheta = 10000, MaxPositions = 256,
        RopeScaling = scaling,
    };

    static double[] Plain(double theta) =>
        [.. Enumerable.Range(0, HeadDim / 2).Select(j => Math.Pow(theta, -2.0 * j / HeadDim))];

    static void AssertTables(ModelConfig config, double[] inverseFrequencies, double scale = 1, bool longFactors = false)
    {
        using var rope = new RotaryEmbedding(config, CPU, longFactors);
        using var scope = NewDisposeScope();
        var (cos, sin) = rope.Slice(0, Positions, float32);
        var c = cos.reshape(Positions, HeadDim).data<float>().ToArray();
        var s = sin.reshape(Positions, HeadDim).data<float>().ToArray();
        for (var p = 0; p < Positions; p++)
            for (var j = 0; j < HeadDim; j++)
            {
                // Hugging Face's layout: dimension j pairs with j + d/2, both rotated by frequency j mod d/2.
                var angle = p * inverseFrequencies[j % (HeadDim / 2)];
                Assert.True(Math.Abs(scale * Math.Cos(angle) - c[p * HeadDim + j]) < 2e-6, $"cos at position {p}, dim {j}");
                Assert.True(Math.Abs(scale * Math.Sin(angle) - s[p * HeadDim + j]) < 2e-6, $"sin at position {p}, dim {j}");
            }
    }

    [Fact]
    public void PlainRopeUsesThetaToTheMinusTwoJOverD() => AssertTables(Config(null), Plain(10000));

    [Fact]
    public void LinearScalingDividesEveryFrequencyByTheFactor() =>
        AssertTables(Config(new RopeScaling("linear", 4)), [.. Plain(10000).Select(f => f / 4)]);

    [Fact]
    public void DynamicNtkRefitsTheBaseAtTheStretchedLength()
    {
        // HF: base' = base * (factor * L / original - (factor - 1)) ^ (d / (d - 2)), here at L = original * factor.
        const double factor = 2.5, original = 256, length = original * factor;
        var stretched = 10000 * Math.Pow(factor * length / original - (factor - 1), HeadDim / (HeadDim - 2.0));
        var config = Config(new RopeScaling("dynamic", factor));
        Assert.Equal(640, RotaryEmbedding.MaxPositions(config));
        AssertTables(config, Plain(stretched));
    }

    [Fact]
    public void Llama3ScalingStretchesLongWavelengthsKeepsShortOnesAndBlendsTheBand()
    {
        // Frequencies 1, 0.1, 0.01, 0.001 (theta 10^4, d 8) have wavelengths 6.3, 63, 628, 6283: with an original
        // length of 1024 and low/high factors 1 and 4 (bounds 1024 and 256), two are kept, one blended, one stretched.
        var scaling = new RopeScaling("llama3", 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 1024);
        var plain = Plain(10000);
        var expected = plain.Select(f =>
        {
            var wavelength = 2 * Math.PI / f;
            if (wavelength < 1024 / 4.0) return f;
            if (wavelength > 1024 / 1.0) return f / 8;
            var smooth = (1024 / wavelength - 1) / (4 - 1);
            return (1 - smooth) * f / 8 + smooth * f;
        }).ToArray();
        Assert.Equal([plain[0], plain[1], plain[3] / 8], [expected[0], expected[1], expected[3]]);
        Assert.InRange(expected[2], plain[2] / 8 * 1.01, plain[2] * 0.99);
        AssertTables(Config(scaling) with { MaxPositions = 2048 }, expected);
    }

    [Fact]
    public void LongropeDividesEachFrequencyByItsShortOrLongFactorAndScalesCosAndSin()
    {
        // Phi-3's longrope (Hugging Face's definition): inv_freq_j = 1 / (factor_j * theta^(2j/d)), cos and sin times
        // the attention factor, in both the short and the long table.
        double[] shortFactors = [1, 1.5, 2, 4], longFactors = [1, 3, 9, 27];
        var scaling = new RopeScaling("longrope", 4, OriginalMaxPositions: 64, ShortFactor: shortFactors, LongFactor: longFactors,
            AttentionFactor: 1.2);
        var plain = Plain(10000);
        AssertTables(Config(scaling), [.. plain.Select((f, j) => f / shortFactors[j])], scale: 1.2);
        AssertTables(Config(scaling), [.. plain.Select((f, j) => f / longFactors[j])], scale: 1.2, longFactors: true);
    }
}
