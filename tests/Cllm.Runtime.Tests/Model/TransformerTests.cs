using Cllm.Model;
using Cllm.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

public sealed class TransformerTests
{
    public static TheoryData<string> Shapes() => [.. TestModels.Shapes];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void CachedStepsMatchOneFullPass(string shape)
    {
        using var model = TestModels.Create(shape, seed: 7);
        // Longer than the dynamic-rope shape's original length (64), which its scaling stretches to 128.
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 90, seed: 3);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var cache = new KvCache(model.Config, 128, model.DType, model.Device);
        var ids = tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0);

        var full = model.Forward(ids, 0, cache);
        Assert.Equal(90, cache.Length);

        // Same tokens in uneven steps (1, 7, 1, 16, ...) through the cache.
        cache.Clear();
        var pieces = new List<Tensor>();
        var position = 0;
        foreach (var step in new[] { 1, 7, 1, 16, 3, 30, 1, 31 })
        {
            pieces.Add(model.Forward(ids.narrow(1, position, step), position, cache));
            position += step;
        }
        Assert.Equal(90, position);
        var stepped = cat(pieces, 1);
        var maxDiff = (full - stepped).abs().max().item<float>();
        Assert.True(maxDiff < 1e-4, $"{shape}: max |full - stepped| = {maxDiff}");
    }

    [Fact]
    public void LongropeChoosesItsFactorsByTheCacheLengthNotByThePass()
    {
        // phi3-longrope's original length is 64: a 64-position cache rotates by the short factors, a 65-position one by
        // the long ones, whatever the positions of the pass; training passes decide by their own length.
        using var model = TestModels.Create("phi3-longrope", seed: 5);
        Assert.Equal(64, model.Config.RopeScaling!.OriginalMaxPositions);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 20, seed: 8);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var ids = tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0);
        Tensor Run(int capacity)
        {
            using var cache = new KvCache(model.Config, capacity, model.DType, model.Device);
            return model.Forward(ids, 0, cache);
        }
        var (within, past, farPast) = (Run(64), Run(65), Run(256));
        Assert.True((within - past).abs().max().item<float>() > 1e-2, "the long factors must change the logits");
        Assert.True(past.allclose(farPast, rtol: 0, atol: 1e-5));
        Assert.True(within.allclose(model.ForwardTraining(ids), rtol: 0, atol: 1e-4));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BranchesLaidSideBySideGiveEachBranchItsOwnCausalLogits(string shape)
    {
        using var model = TestModels.Create(shape, seed: 11);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 20, seed: 5);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var cache = new KvCache(model.Config, 64, model.DType, model.Device);
        model.Forward(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0), 0, cache);

        // Root r, then branch a (3 tokens) and branch b (2 tokens), both continuing r at positions 21, 22, ...
        long r = 17, a0 = 40, a1 = 41, a2 = 42, b0 = 50, b1 = 51;
        var layout = new PassLayout([0, 1, 2, 3, 1, 2], Visible(6, (0, 0),
            (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2), (3, 3),
            (4, 0), (4, 4), (5, 0), (5, 4), (5, 5)));
        var together = model.Forward(tensor(new[] { r, a0, a1, a2, b0, b1 }).unsqueeze(0), 20, cache, layout: layout);
        Assert.Equal(26, cache.Length);

        foreach (var (branch, rows) in new[] { (new[] { r, a0, a1, a2 }, new long[] { 0, 1, 2, 3 }), (new[] { r, b0, b1 }, new long[] { 0, 4, 5 }) })
        {
            cache.Truncate(20);
            var alone = model.Forward(tensor(branch).unsqueeze(0), 20, cache);
            var picked = together.index_select(1, tensor(rows));
            Assert.True(alone.allclose(picked, rtol: 1e-4, atol: 1e-4), $"{shape}: branch logits differ by {(alone - picked).abs().max().item<float>()}");
        }

        // Moving branch b's entries into place and extending from it equals running b causally.
        cache.Truncate(20);
        model.Forward(tensor(new[] { r, a0, a1, a2, b0, b1 }).unsqueeze(0), 20, cache, layout: layout);
        cache.Move(24, 21, 2);
        cache.Truncate(23);
        var afterMove = model.Forward(tensor(new long[] { 60 }).unsqueeze(0), 23, cache);
        cache.Truncate(20);
        var direct = model.Forward(tensor(new[] { r, b0, b1, 60 }).unsqueeze(0), 20, cache).narrow(1, 3, 1);
        Assert.True(afterMove.allclose(direct, rtol: 1e-4, atol: 1e-4));
    }

    static bool[] Visible(int t, params (int Row, int Col)[] pairs)
    {
        var visible = new bool[t * t];
        foreach (var (row, col) in pairs) visible[row * t + col] = true;
        return visible;
    }

    [Fact]
    public void BadPassLayoutIsRejected()
    {
        using var model = TestModels.Create("mha", seed: 1);
        using var cache = new KvCache(model.Config, 16, model.DType, model.Device);
        var ids = tensor(new long[] { 1, 2 }).unsqueeze(0);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(ids, 0, cache, layout: new PassLayout([0], [true])));
        Assert.Contains("describes 1 tokens", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Forward(ids, 0, cache, layout: new PassLayout([0, 1], [true, false, true, false])));
        Assert.Contains("does not see itself", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Move(0, 1, 1)); // nothing cached yet
    }

    [Fact]
    public void TruncateDropsEntriesSoRecomputingGivesTheSameLogits()
    {
        using var model = TestModels.Create("gqa-tied", seed: 11);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 20, seed: 5);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var cache = new KvCache(model.Config, 64, model.DType, model.Device);
        var ids = tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0);
        model.Forward(ids.narrow(1, 0, 12), 0, cache);
        var reference = model.Forward(ids.narrow(1, 12, 8), 12, cache);

        // Write garbage at 12..19, cut back to 12, recompute: same logits.
        model.Forward(tensor(new long[] { 9, 9, 9, 9, 9, 9, 9, 9 }).unsqueeze(0), 12, cache);
        cache.Truncate(12);
        Assert.Equal(12, cache.Length);
        var again = model.Forward(ids.narrow(1, 12, 8), 12, cache);
        Assert.True((reference - again).abs().max().item<float>() < 1e-5);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Truncate(21));
    }

    [Theory]
    [InlineData("mha")]
    [InlineData("gemma2")] // Gemma's (1 + w) norms, embedding scale and written-out attention in bfloat16
    [InlineData("gemma3")]
    public void BFloat16ModelTracksFloat32(string shape)
    {
        using var model32 = TestModels.Create(shape, seed: 2);
        using var model16 = TestModels.Create(shape, seed: 2, ScalarType.BFloat16);
        var prompt = TestModels.RandomPrompt(model32.Config.VocabSize, 16, seed: 1);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var cache32 = new KvCache(model32.Config, 32, model32.DType, model32.Device);
        using var cache16 = new KvCache(model16.Config, 32, model16.DType, model16.Device);
        var ids = tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0);
        var a = model32.Forward(ids, 0, cache32);
        var b = model16.Forward(ids, 0, cache16);
        Assert.Equal(ScalarType.Float32, b.dtype);
        // bf16 keeps 8 bits of mantissa: agreement is loose but far from random.
        var corr = corrcoef(stack([a.flatten(), b.flatten()])).data<float>()[1];
        Assert.True(corr > 0.99, $"correlation {corr}");
    }

    [Fact]
    public void ConfigRejectsUnsupportedArchitectureAndRopeType()
    {
        var e = Assert.Throws<InvalidDataException>(() => (ModelConfig.Preset("tiny") with { Architecture = "GPT2LMHeadModel" }).Validate());
        Assert.Contains("GPT2LMHeadModel", e.Message);
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelConfig.Preset("tiny").ToJson())!.AsObject();
        json["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 };
        e = Assert.Throws<InvalidDataException>(() => ModelConfig.FromJson(json, "x/config.json"));
        Assert.Contains("yarn", e.Message);
        Assert.Contains("x/config.json", e.Message);
    }

    [Fact]
    public void RmsNormScalesEachFeatureByItsWeightAfterDividingByTheRootMeanSquare()
    {
        const int size = 8;
        const double eps = 1e-3; // large enough that dropping it shows
        TorchNative.EnsureLoaded(); // the first TorchSharp call of a test run may be this one
        var norm = new RmsNorm(size, eps, float32, CPU);
        var random = new Random(2);
        var weights = Enumerable.Range(0, size).Select(_ => 0.5 + random.NextDouble()).ToArray();
        var input = Enumerable.Range(0, 3 * size).Select(_ => random.NextDouble() * 0.2 - 0.1).ToArray();
        using (no_grad()) norm.parameters().Single().copy_(tensor(weights, float32));
        var actual = norm.forward(tensor(input, [3, size], float32)).to(float64).data<double>().ToArray();
        for (var row = 0; row < 3; row++)
        {
            var meanSquare = Enumerable.Range(0, size).Average(i => input[row * size + i] * input[row * size + i]);
            for (var i = 0; i < size; i++)
            {
                var expected = input[row * size + i] / Math.Sqrt(meanSquare + eps) * weights[i];
                Assert.True(Math.Abs(expected - actual[row * size + i]) < 1e-5, $"row {row}, feature {i}: {actual[row * size + i]} vs {expected}");
            }
        }
    }

    [Fact]
    public void RandomModelsHaveNormWeightsSpreadAroundOne()
    {
        using var model = TestModels.Create("gqa-tied", seed: 3);
        var norms = model.named_parameters().Where(p => p.name.EndsWith("norm.weight", StringComparison.Ordinal)).ToList();
        Assert.Equal(2 * model.Config.NumLayers + 1, norms.Count);
        foreach (var (name, weight) in norms)
        {
            var values = weight.to(float64).data<double>().ToArray();
            var mean = values.Average();
            var spread = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
            Assert.True(Math.Abs(mean - 1) < 0.05, $"{name}: mean {mean}");
            Assert.InRange(spread, 0.5 * Transformer.NormWeightSpread, 1.5 * Transformer.NormWeightSpread);
        }

        // The same seed gives the same weights; another seed other ones.
        using var again = TestModels.Create("gqa-tied", seed: 3);
        using var other = TestModels.Create("gqa-tied", seed: 4);
        var first = norms[0].parameter;
        Assert.True(first.equal(again.named_parameters().First(p => p.name == norms[0].name).parameter).all().item<bool>());
        Assert.False(first.equal(other.named_parameters().First(p => p.name == norms[0].name).parameter).all().item<bool>());
    }
}
