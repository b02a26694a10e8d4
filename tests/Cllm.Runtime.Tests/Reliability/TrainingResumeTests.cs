using Cllm.Model;
using Cllm.Training;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>One real checkpoint (a run killed after its first step), shared by the resume cases.</summary>
public sealed class KilledRunFixture : IDisposable
{
    public KilledRunFixture()
    {
        using var model = ResumeCase.Model(64);
        var trainer = new Trainer(model, ResumeCase.Options, Folder.Path) { RunSettings = ResumeCase.Settings };
        Assert.Throws<OperationCanceledException>(() =>
            trainer.Run(ResumeCase.Objective(model), p => { if (p.Step == 1) throw new OperationCanceledException(); }));
        Assert.True(Directory.Exists(trainer.CheckpointDirectory));
    }

    internal TempFolder Folder { get; } = new();

    public void Dispose() => Folder.Dispose();
}

public static class ResumeCase
{
    public static readonly TrainOptions Options = new() { Steps = 3, CheckpointEvery = 1, LearningRate = 1e-3, Seed = 1 };

    public static readonly Dictionary<string, string> Settings = new() { ["objective"] = "ar", ["batch"] = "4", ["preset"] = "micro" };

    static readonly int[][] Corpus = Enumerable.Range(0, 8).Select(i => Enumerable.Range(0, 12).Select(j => 3 + (i + j) % 60).ToArray()).ToArray();

    public static Transformer Model(int hidden)
    {
        var model = new Transformer(ModelConfig.Preset("tiny") with
        {
            VocabSize = 64, HiddenSize = hidden, NumLayers = 1, IntermediateSize = 2 * hidden, HeadDim = hidden / 4,
        });
        model.InitializeRandom(1);
        return model;
    }

    public static Func<int, int, MicroBatchLoss> Objective(Transformer model) => Objectives.Autoregressive(model, Corpus, 4, seed: 1);
}

/// <summary>Resuming a checkpoint with other settings: refused with both values named, before any native call.</summary>
public sealed class TrainingResumeTests(KilledRunFixture run) : IClassFixture<KilledRunFixture>
{
    public static TheoryData<string, string, string> Changes => new()
    {
        { "lr", "lr 0.001", "lr 0.002" },
        { "seed", "seed 1", "seed 7" },
        { "steps", "steps 3", "steps 5" },
        { "accumulation", "accumulation 1", "accumulation 2" },
        { "weight-decay", "weight-decay 0.1", "weight-decay 0" },
        { "warmup", "warmup 0.03", "warmup 0.5" },
        { "clip", "clip 1", "clip 0.5" },
        { "min-lr", "min-lr-fraction 0.1", "min-lr-fraction 0" },
        { "batch", "batch 4", "batch 8" },
        { "objective", "objective ar", "objective consistency" },
        { "preset", "preset micro", "preset small" },
        { "shape", "model shape (hidden_size=64", "model shape (hidden_size=32" },
    };

    [Theory]
    [MemberData(nameof(Changes))]
    public void ResumingWithAnotherValueNamesBoth(string change, string saved, string asked)
    {
        var options = change switch
        {
            "lr" => ResumeCase.Options with { LearningRate = 2e-3 },
            "seed" => ResumeCase.Options with { Seed = 7 },
            "steps" => ResumeCase.Options with { Steps = 5 },
            "accumulation" => ResumeCase.Options with { GradientAccumulation = 2 },
            "weight-decay" => ResumeCase.Options with { WeightDecay = 0 },
            "warmup" => ResumeCase.Options with { WarmupFraction = 0.5 },
            "clip" => ResumeCase.Options with { ClipNorm = 0.5 },
            "min-lr" => ResumeCase.Options with { MinLearningRateFraction = 0 },
            _ => ResumeCase.Options,
        };
        var settings = new Dictionary<string, string>(ResumeCase.Settings);
        if (change == "batch") settings["batch"] = "8";
        if (change == "objective") settings["objective"] = "consistency";
        if (change == "preset") settings["preset"] = "small";
        using var model = ResumeCase.Model(change == "shape" ? 32 : 64);
        var trainer = new Trainer(model, options, run.Folder.Path) { RunSettings = settings };
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Run(ResumeCase.Objective(model)));
        Assert.Contains($"was written by a run with {saved}", e.Message);
        Assert.Contains($"this run asks for {asked}", e.Message);
        Assert.Contains(trainer.CheckpointDirectory, e.Message);
        Assert.Contains("delete", e.Message);
    }

    [Fact]
    public void ADamagedTrainerStateIsAClearError()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(Path.Combine(folder.Path, "checkpoint"));
        File.WriteAllText(Path.Combine(folder.Path, "checkpoint", "trainer.json"), "{\"Step\": 2, \"Ste");
        using var model = ResumeCase.Model(64);
        var e = Assert.Throws<InvalidDataException>(() => new Trainer(model, ResumeCase.Options, folder.Path).Run(ResumeCase.Objective(model)));
        Assert.Contains("trainer.json: not a trainer state", e.Message);
    }
}
