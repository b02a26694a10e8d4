using Cllm.Decoding;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Decoding;

/// <summary>The adaptive block size: the choice follows cost and acceptance, and never changes the tokens.</summary>
public sealed class BlockSizerTests
{
    // A pass of r rows "costs" fixed + perRow * r time units; the sizer only sees what Calibrate's pass reports.
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

    static void Observe(BlockSizer sizer, double[] chance, int passes, int guesses)
    {
        var random = new Random(1);
        for (var p = 0; p < passes; p++)
        {
            var accepted = 0;
            while (accepted < guesses && random.NextDouble() < chance[Math.Min(accepted, chance.Length - 1)]) accepted++;
            sizer.Record(guesses, accepted, rows: 7, seconds: null);
        }
    }

    [Fact]
    public void CheapRowsAndHighAcceptanceGrowTheBlock_CostlyRowsAndLowAcceptanceShrinkIt()
    {
        // Rows nearly free (a pass is 2 ms whatever its size) and guesses accepted 90% of the time: a big block pays.
        var cheap = Calibrated(fixedCost: 2000, perRow: 1);
        Observe(cheap, [0.9], passes: 200, guesses: 15);
        var big = cheap.Choose();
        Assert.True(big >= 16, $"chose {big}");

        // Every row costs as much as the pass itself and guesses are rarely right: the smallest block.
        var costly = Calibrated(fixedCost: 100, perRow: 400);
        Observe(costly, [0.1], passes: 200, guesses: 15);
        Assert.Equal(2, costly.Choose());

        // In between, the choice lies strictly inside.
        var middle = Calibrated(fixedCost: 2000, perRow: 100);
        Observe(middle, [0.8, 0.6, 0.3], passes: 300, guesses: 15);
        // Expected tokens 1.8, 2.28, 2.42, 2.47 ... at n = 2, 3, 4, 5 against costs 2.2, 2.3, 2.4, 2.5 ms: n = 4 is best.
        Assert.Equal(4, middle.Choose());
    }

    [Fact]
    public void UncalibratedChoosesSixteenAndCalibrationIsMonotone()
    {
        var sizer = new BlockSizer();
        Assert.Equal(16, sizer.Choose());
        Assert.Equal(8, sizer.Choose(limit: 8));
        sizer.Calibrate(rows => Spin(rows == 4 ? 1 : 300 * rows), repeats: 2); // a noisy dip at 4 rows
        var costs = sizer.PassSeconds;
        Assert.True(costs[4] >= costs[2], "a pass of more rows must never be taken as cheaper");
        Assert.True(costs[64] > costs[1]);
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
