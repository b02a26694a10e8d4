using Cllm.Decoding;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Decoding;

/// <summary>The adaptive block size: the choice follows cost and acceptance, and never changes the tokens.</summary>
public sealed class BlockSizerTests
{
    static BlockSizer Calibrated(double fixedCost, double perRow)
    {
        var sizer = new BlockSizer();
        sizer.SetCosts([.. BlockSizer.Rows.Select(r => (fixedCost + perRow * r) * 1e-6)]);
        return sizer;
    }

    static void Spin(double microseconds)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed.TotalMicroseconds < microseconds) { }
    }

    /// <summary>Runs blocks as the decoder does: choose a size, "decode" a block, record its tokens and seconds.</summary>
    static List<int> Run(BlockSizer sizer, Func<int, (int Tokens, double Seconds)> block, int blocks)
    {
        var chosen = new List<int>();
        for (var b = 0; b < blocks; b++)
        {
            var n = sizer.Choose();
            chosen.Add(n);
            var (tokens, seconds) = block(n);
            sizer.RecordBlock(n, tokens, seconds);
        }
        return chosen;
    }

    [Fact]
    public void TheSizeWithTheMostTokensPerSecondWinsAfterEachIsTried()
    {
        var sizer = Calibrated(fixedCost: 1000, perRow: 10);
        // A model whose blocks make most tokens per second at n = 24 (a peaked curve over the sizes).
        static (int, double) Block(int n) => (n, n / (100.0 - Math.Abs(n - 24)));
        var chosen = Run(sizer, Block, blocks: 200);
        Assert.Equal(16, chosen[0]); // the usual size first
        Assert.All(new[] { 4, 8, 12, 16, 24, 32 }, n => Assert.Contains(n, chosen)); // every size tried
        var late = chosen.Skip(100).ToList();
        Assert.True(late.Count(n => n == 24) >= 0.85 * late.Count, $"24 chosen {late.Count(n => n == 24)} of {late.Count} times");
        Assert.Contains(late, n => n != 24); // still exploring now and then
        Assert.Equal(24, sizer.TokensPerSecond.MaxBy(p => p.Value).Key);
    }

    [Fact]
    public void SizesWhosePassCostsMoreThanThatManyOneTokenPassesAreNeverTried()
    {
        // Every row costs as much as a whole one-row pass and a bit more: no block can beat AR, so nothing is tried
        // beyond what the calibration allows; here rows are cheap up to 16 and dear above.
        var sizer = new BlockSizer();
        sizer.SetCosts([1e-3, 1.1e-3, 1.2e-3, 1.5e-3, 2e-3, 40e-3]); // 1, 2, 4, 8, 16, 32 rows
        var chosen = Run(sizer, n => (n / 2, 1e-3 * n), blocks: 60);
        Assert.DoesNotContain(chosen, n => n > 24);
        Assert.Contains(16, chosen);
    }

    [Fact]
    public void UncalibratedStartsAtSixteenAndCalibrationIsMonotone()
    {
        var sizer = new BlockSizer();
        Assert.Equal(16, sizer.Choose());
        Assert.True(sizer.Choose(limit: 8) <= 8);
        sizer.Calibrate(rows => Spin(rows == 4 ? 1 : 300 * rows), repeats: 2); // a noisy dip at 4 rows
        var costs = sizer.PassSeconds;
        Assert.True(costs[4] >= costs[2], "a pass of more rows must never be taken as cheaper");
        Assert.True(costs[32] > costs[1]);
    }

    [Fact]
    public void AdaptiveJacobiAndLookaheadGiveAutoregressiveTokens()
    {
        foreach (var shape in new[] { "mha", "gqa-tied", "qwen2-bias" })
        {
            using var model = TestModels.Create(shape, seed: 5);
            using var cache = new KvCache(model.Config, 512, model.DType, model.Device);
            var sizer = new BlockSizer();
            for (var p = 0; p < 3; p++)
            {
                var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 5 + 9 * p, 40 + p);
                var ar = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 80 }, out _);
                foreach (var kind in new[] { DecoderKind.Jacobi, DecoderKind.Lookahead })
                {
                    var stats = new DecodingStats();
                    var tokens = Decoder.Generate(model, cache, prompt, new GenerationOptions { Decoder = kind, MaxNewTokens = 80, Seed = p },
                        stats, [], sizer: sizer).SelectMany(c => c.Tokens).ToArray();
                    Assert.Equal(ar, tokens);
                }
            }
            Assert.True(sizer.Calibrated, "the first adaptive request calibrates the sizer");
            Assert.InRange(sizer.Current, 2, BlockSizer.MaxBlockSize);
        }
    }
}
