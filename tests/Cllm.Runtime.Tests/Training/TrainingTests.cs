using Cllm.Decoding;
using Cllm.Model;
using Cllm.Tests.Checkpoints;
using Cllm.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Training;

public sealed class TrainingTests(ITestOutputHelper output)
{
    static readonly int[] NoStop = [];

    /// <summary>A toy language: arithmetic-like sequences a, a+s, a+2s, ... (mod 60) over ids 3..62. A small
    /// model learns it fast, and once learned, each token is predictable from the two before it.</summary>
    static int[][] ToyCorpus(int count, int seed, int length = 40)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            int a = random.Next(60), s = random.Next(1, 7);
            return Enumerable.Range(0, length).Select(i => 3 + (a + i * s) % 60).ToArray();
        }).ToArray();
    }

    /// <summary>Collocations: each of 8 key tokens is always followed by its own fixed 24-token phrase, after
    /// 1-3 noise tokens. A model that knows the key and how far it is into the phrase can predict a token
    /// even when the tokens before it are wrong: what consistency training should teach.</summary>
    static int[][] PhraseCorpus(int count, int seed, bool promptOnly = false)
    {
        var phrases = Enumerable.Range(0, 8).Select(k =>
        {
            var r = new Random(1000 + k);
            return Enumerable.Range(0, 24).Select(_ => r.Next(11, 64)).ToArray();
        }).ToArray();
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var noise = Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(11, 64));
            var key = random.Next(8);
            var prompt = noise.Append(3 + key);
            return (promptOnly ? prompt : prompt.Concat(phrases[key])).ToArray();
        }).ToArray();
    }

    static Transformer MicroModel(long seed, int hidden = 64, int layers = 2)
    {
        var config = ModelConfig.Preset("tiny") with
        {
            VocabSize = 64, HiddenSize = hidden, NumLayers = layers, IntermediateSize = 2 * hidden, HeadDim = hidden / 4,
        };
        var model = new Transformer(config);
        model.InitializeRandom(seed);
        return model;
    }

    static TrainOptions Options(int steps) => new()
    {
        Steps = steps, LearningRate = 3e-3, WarmupFraction = 0.1, CheckpointEvery = 10_000, GradientAccumulation = 1,
    };

    [Fact]
    public void MicroModelLearnsToyCorpus()
    {
        using var folder = new TempFolder();
        using var model = MicroModel(1);
        var losses = new List<double>();
        new Trainer(model, Options(120), folder.Path).Run(Objectives.Autoregressive(model, ToyCorpus(400, 1), 8, seed: 1), p => losses.Add(p.Loss));
        output.WriteLine($"loss {losses[0]:F3} -> {losses[^1]:F3}");
        Assert.Equal(120, losses.Count);
        Assert.True(losses.Skip(110).Average() < 0.5 * losses.Take(10).Average(), $"loss {losses.Take(10).Average():F3} -> {losses.Skip(110).Average():F3}");
        Assert.True(File.Exists(folder.File("model.safetensors")));
    }

    [Fact]
    public void MixedPrecisionTrainsTheFloat32MasterLikeFloat32Training()
    {
        // The same 60 steps in float32 and with bfloat16 forward/backward on a copy: both learn the toy corpus alike, and the
        // mixed run's saved model is its float32 master (the bf16 copy only computes).
        var corpus = ToyCorpus(400, 1);
        List<double> Train(bool mixed, out Tensor firstWeight)
        {
            using var folder = new TempFolder();
            using var model = MicroModel(1);
            using var compute = mixed ? new Transformer(model.Config, ScalarType.BFloat16) : null;
            var losses = new List<double>();
            new Trainer(model, Options(60), folder.Path, compute)
                .Run(Objectives.Autoregressive(compute ?? model, corpus, 8, seed: 1), p => losses.Add(p.Loss));
            Assert.Equal(ScalarType.Float32, model.DType);
            using var saved = Cllm.Checkpoints.ModelFiles.Load(folder.Path);
            firstWeight = saved.parameters().First().detach().clone();
            Assert.Equal(ScalarType.Float32, firstWeight.dtype);
            Assert.True(model.parameters().First().allclose(firstWeight), "the saved model is the master's weights");
            if (compute is not null)
                Assert.True(compute.parameters().First().to(ScalarType.Float32).allclose(firstWeight, rtol: 1e-2, atol: 1e-2),
                    "the compute copy holds the master's weights, rounded to bf16");
            return losses;
        }

        var f32 = Train(mixed: false, out var w32);
        var bf16 = Train(mixed: true, out var w16);
        output.WriteLine($"loss f32 {f32[0]:F3} -> {f32.Skip(50).Average():F3}, bf16 mixed {bf16[0]:F3} -> {bf16.Skip(50).Average():F3}");
        Assert.Equal(f32[0], bf16[0], 1); // the same first batch and weights, only rounding differs
        Assert.True(bf16.Skip(50).Average() < 0.6 * bf16.Take(5).Average(), "mixed precision learns");
        Assert.True(Math.Abs(bf16.Skip(50).Average() - f32.Skip(50).Average()) < 0.15 * f32.Skip(50).Average(), "and about as well as f32");
        Assert.False(w32.allclose(w16, rtol: 0, atol: 0), "the runs differ by bf16 rounding");

        using var folder = new TempFolder();
        using var master = MicroModel(1);
        using var otherShape = MicroModel(1, hidden: 32);
        Assert.Throws<ArgumentException>(() => new Trainer(master, Options(1), folder.Path, otherShape));
    }

    [Fact]
    public void ResumedRunTakesTheSameNextStepAsAnUninterruptedOne()
    {
        var corpus = ToyCorpus(100, 2);
        var options = Options(6) with { CheckpointEvery = 3, GradientAccumulation = 2 };
        using var straightFolder = new TempFolder();
        using var straight = MicroModel(3);
        new Trainer(straight, options, straightFolder.Path).Run(Objectives.Autoregressive(straight, corpus, 4, seed: 5));

        // Kill after step 4 (checkpoint at 3), then a new process-like run resumes from it.
        using var resumedFolder = new TempFolder();
        using (var first = MicroModel(3))
        {
            var trainer = new Trainer(first, options, resumedFolder.Path);
            Assert.Throws<OperationCanceledException>(() =>
                trainer.Run(Objectives.Autoregressive(first, corpus, 4, seed: 5), p => { if (p.Step == 4) throw new OperationCanceledException(); }));
        }
        using var resumed = MicroModel(99); // different init: everything must come from the checkpoint
        var start = new Trainer(resumed, options, resumedFolder.Path).Run(Objectives.Autoregressive(resumed, corpus, 4, seed: 5));
        Assert.Equal(3, start);
        var expected = straight.state_dict();
        foreach (var (name, tensor) in resumed.state_dict())
            Assert.True(expected[name].allclose(tensor, rtol: 0, atol: 1e-6), $"{name} differs after resuming");
    }

    [Fact]
    public void ConsistencyLossIsZeroAtTheFixedPointAndNeverReachesTheTarget()
    {
        using var scope = NewDisposeScope();
        var student = randn(1, 5, 11).requires_grad_(true);
        var target = student.detach().clone().requires_grad_(true);
        var mask = tensor(new[] { false, true, true, true, true }).unsqueeze(0);
        var atFixedPoint = Losses.Consistency(student, target, mask);
        Assert.True(Math.Abs(atFixedPoint.item<float>()) < 1e-6);

        var other = randn(1, 5, 11).requires_grad_(true);
        var loss = Losses.Consistency(student, other, mask);
        Assert.True(loss.item<float>() > 0.01);
        loss.backward();
        Assert.True(student.grad is not null && student.grad.abs().sum().item<float>() > 0);
        Assert.True(other.grad is null || other.grad.abs().sum().item<float>() == 0, "gradient reached the target side");
        // Masked positions contribute nothing.
        Assert.True(student.grad!.select(1, 0).abs().sum().item<float>() == 0);
    }

    [Fact]
    public void TrajectoriesEndAtTheGreedyOutputAndAugmentationOnlyMovesTowardIt()
    {
        using var model = MicroModel(4);
        model.InitializeRandom(4, TestModels.InitStd);
        model.eval();
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var random = new Random(1);
        foreach (var (prompt, index) in ToyCorpus(5, 7, length: 6).Select((p, i) => (p, i)))
        {
            var trajectories = TrajectoryCollector.Collect(model, cache, index, prompt, 8, 32, NoStop, augment: true, random);
            var greedy = Decoder.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 32 },
                new DecodingStats(), NoStop).SelectMany(c => c.Tokens).ToArray();
            // Blocks of repeated tokens are dropped by the cleaning; the rest line up with greedy decoding.
            Assert.NotEmpty(trajectories);
            foreach (var t in trajectories)
            {
                Assert.Equal(t.States[^1], t.FixedPoint);
                Assert.Equal(greedy.Skip(t.BlockIndex * 8).Take(8), t.FixedPoint);
                Assert.Equal(prompt.Concat(greedy.Take(t.BlockIndex * 8)), t.Prompt);
                Assert.All(t.States, s => Assert.Equal(t.FixedPoint[0], s[0])); // the block's first token is known
                Assert.True(t.States.Length <= 2 * 8 + 1);
            }
        }
    }

    [Fact]
    public void AugmentReplacesOnlyWrongTokensAfterTheFirstWrongOne()
    {
        var fixedPoint = new[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        var state = new[] { 1, 9, 9, 9, 5, 9, 9, 9 };
        var trajectory = new Trajectory(0, 0, [1], [state, fixedPoint], fixedPoint);
        var sawAugmented = false;
        for (var seed = 0; seed < 20; seed++)
        {
            var augmented = TrajectoryCollector.Augment(trajectory, new Random(seed));
            Assert.Equal(state, augmented.States[0]);
            Assert.Equal(fixedPoint, augmented.States[^1]);
            foreach (var s in augmented.States[1..^1])
            {
                sawAugmented = true;
                Assert.Equal(9, s[1]); // the first wrong token stays wrong
                for (var i = 0; i < 8; i++) Assert.True(s[i] == state[i] || s[i] == fixedPoint[i]);
                Assert.True(s.Zip(fixedPoint).Count(x => x.First != x.Second) < 6);
            }
        }
        Assert.True(sawAugmented);
    }

    [Fact]
    public void ConsistencyTrainingRaisesTokensPerPassOnHeldOutPrompts()
    {
        using var folder = new TempFolder();
        using var model = MicroModel(6, hidden: 128, layers: 3);
        var arLosses = new List<double>();
        new Trainer(model, Options(150) with { LearningRate = 5e-3 }, folder.Path).Run(Objectives.Autoregressive(model, PhraseCorpus(400, 11), 8, seed: 2), p => arLosses.Add(p.Loss));
        output.WriteLine($"AR loss {arLosses[0]:F3} -> {arLosses[^1]:F3}");

        // Teacher trajectories on training prompts, then consistency training of the same model.
        using var cache = new KvCache(model.Config, 128, model.DType, model.Device);
        var random = new Random(3);
        var prompts = PhraseCorpus(40, 12, promptOnly: true);
        var trajectories = prompts.SelectMany((p, i) => TrajectoryCollector.Collect(model, cache, i, p, 8, 24, NoStop, augment: true, random)).ToList();
        var heldOut = PhraseCorpus(10, 13, promptOnly: true);
        double TokensPerPass(out int[][] outputs)
        {
            var stats = new List<DecodingStats>();
            outputs = heldOut.Select(p =>
            {
                var s = new DecodingStats();
                stats.Add(s);
                return Decoder.Generate(model, cache, p, new GenerationOptions { MaxNewTokens = 24, BlockSize = 8 }, s, NoStop).SelectMany(c => c.Tokens).ToArray();
            }).ToArray();
            return stats.Sum(s => s.GeneratedTokens) / (double)stats.Sum(s => s.ForwardPasses);
        }
        model.eval();
        var before = TokensPerPass(out var beforeOutputs);
        Assert.All(beforeOutputs, o => Assert.Equal(24, o.Length));
        using var cllmFolder = new TempFolder();
        var cLosses = new List<TrainProgress>();
        new Trainer(model, Options(300) with { LearningRate = 3e-3 }, cllmFolder.Path)
            .Run(Objectives.Consistency(model, trajectories, ConsistencyKind.Global, arWeight: 1, seed: 4, batchSize: 8), cLosses.Add);
        output.WriteLine($"consistency {cLosses[0].Parts["consistency"]:F3} -> {cLosses[^1].Parts["consistency"]:F3}, ar {cLosses[0].Parts["ar"]:F3} -> {cLosses[^1].Parts["ar"]:F3}");
        model.eval();
        var after = TokensPerPass(out _);
        output.WriteLine($"tokens per pass {before:F2} -> {after:F2}; {trajectories.Count} trajectories");
        Assert.True(after > before + 0.3, $"tokens per pass {before:F2} -> {after:F2}");
    }
}
