using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Transformer = Cllm.Model.Transformer;

namespace Cllm.Training;

/// <summary>Optimiser and schedule settings shared by every objective.</summary>
public sealed record TrainOptions
{
    public int Steps { get; init; } = 1000;
    /// <summary>Micro-batches whose gradients are summed before each optimiser step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Decoupled weight decay on matrices (not on norms or biases).</summary>
    public double WeightDecay { get; init; } = 0.1;
    public double WarmupFraction { get; init; } = 0.03;
    /// <summary>The cosine schedule ends at this fraction of the peak learning rate.</summary>
    public double MinLearningRateFraction { get; init; } = 0.1;
    public double ClipNorm { get; init; } = 1.0;
    public int CheckpointEvery { get; init; } = 200;
    public long Seed { get; init; } = 1;

    public TrainOptions Validate()
    {
        if (Steps <= 0) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "Steps must be positive.");
        if (GradientAccumulation <= 0) throw new ArgumentOutOfRangeException(nameof(GradientAccumulation), GradientAccumulation, "GradientAccumulation must be positive.");
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive.");
        if (WeightDecay < 0) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be >= 0.");
        if (WarmupFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(WarmupFraction), WarmupFraction, "WarmupFraction must be in [0, 1).");
        if (CheckpointEvery <= 0) throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "CheckpointEvery must be positive.");
        return this;
    }

    /// <summary>Linear warm-up, then cosine decay to <see cref="MinLearningRateFraction"/> of the peak.</summary>
    public double LearningRateAt(int step)
    {
        var warmup = (int)Math.Ceiling(WarmupFraction * Steps);
        if (step < warmup) return LearningRate * (step + 1) / warmup;
        var progress = (double)(step - warmup) / Math.Max(1, Steps - warmup);
        var cosine = 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
        return LearningRate * (MinLearningRateFraction + (1 - MinLearningRateFraction) * cosine);
    }
}

/// <summary>One optimiser step's numbers, as printed and as written to the metrics JSON lines.</summary>
public sealed record TrainProgress(int Step, int Steps, double Loss, IReadOnlyDictionary<string, double> Parts,
    double LearningRate, double GradNorm, long Tokens, double TokensPerSecond, TimeSpan Eta);

/// <summary>The loss of one micro-batch and the tokens it covered. Parts are logged, not optimised.</summary>
public sealed record MicroBatchLoss(Tensor Loss, long Tokens, IReadOnlyDictionary<string, double>? Parts = null);

/// <summary>
/// The training loop every objective shares: AdamW with decoupled weight decay, warm-up + cosine,
/// gradient clipping and accumulation, and checkpoints written atomically every K steps from which a
/// killed run resumes and takes exactly the steps it would have taken. Objectives supply the loss of
/// micro-batch (step, index), which must depend only on those two numbers (no hidden RNG state).
/// </summary>
/// <remarks>
/// Mixed precision: with a <paramref name="computeModel"/> (the same shape in another dtype, e.g. bfloat16) the
/// objectives run forward and backward on it, while <paramref name="model"/> keeps the float32 master weights the
/// optimiser updates. TorchSharp has no autocast, so each step copies the master weights into the compute model
/// and its gradients back (as float32) before clipping and the update; checkpoints and the saved model are the
/// master's. The objectives must then be built on the compute model.
/// </remarks>
public sealed class Trainer(Transformer model, TrainOptions options, string outputDirectory, Transformer? computeModel = null)
{
    const string CheckpointFolder = "checkpoint";
    const string OptimizerFile = "optimizer.bin";
    const string StateFile = "trainer.json";

    readonly TrainOptions _options = options.Validate();
    readonly Transformer? _compute = CheckComputeModel(model, computeModel);

    /// <summary>
    /// What else decides the run's result besides <see cref="TrainOptions"/> (objective, batch size, data, preset,
    /// dtype...), as name and value. Saved with each checkpoint; resuming with any other value is refused.
    /// </summary>
    public IReadOnlyDictionary<string, string> RunSettings { get; init; } = new Dictionary<string, string>();

    public string CheckpointDirectory => Path.Combine(outputDirectory, CheckpointFolder);

    /// <summary>Runs steps from the last checkpoint (or 0) to <see cref="TrainOptions.Steps"/>, then saves the
    /// model in Hugging Face layout into the output folder. Returns the step it resumed from.</summary>
    public int Run(Func<int, int, MicroBatchLoss> microBatch, Action<TrainProgress>? report = null, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(outputDirectory);
        model.train();
        using var optimizer = CreateOptimizer();
        var start = Resume(optimizer);
        _compute?.train();
        CopyMasterToCompute();
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        for (var step = start; step < _options.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var lr = _options.LearningRateAt(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            optimizer.zero_grad();
            _compute?.zero_grad();
            double loss = 0;
            var parts = new Dictionary<string, double>();
            for (var micro = 0; micro < _options.GradientAccumulation; micro++)
            {
                using var scope = NewDisposeScope();
                var result = microBatch(step, micro);
                (result.Loss / _options.GradientAccumulation).backward();
                loss += result.Loss.item<float>() / _options.GradientAccumulation;
                tokens += result.Tokens;
                foreach (var (name, value) in result.Parts ?? new Dictionary<string, double>())
                    parts[name] = parts.GetValueOrDefault(name) + value / _options.GradientAccumulation;
            }
            CopyComputeGradientsToMaster();
            double gradNorm;
            using (var scope = NewDisposeScope())
                gradNorm = nn.utils.clip_grad_norm_(model.parameters(), _options.ClipNorm);
            optimizer.step();
            CopyMasterToCompute();

            var done = step + 1;
            if (done % _options.CheckpointEvery == 0 && done < _options.Steps) SaveCheckpoint(optimizer, done);
            var rate = tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            var eta = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / (done - start) * (_options.Steps - done));
            report?.Invoke(new TrainProgress(done, _options.Steps, loss, parts, lr, gradNorm, tokens, rate, eta));
        }
        model.eval();
        ModelFiles.Save(model, outputDirectory);
        return start;
    }

    static Transformer? CheckComputeModel(Transformer master, Transformer? compute)
    {
        if (compute is null) return null;
        var shapes = master.parameters().Select(p => string.Join('x', p.shape)).ToList();
        if (!shapes.SequenceEqual(compute.parameters().Select(p => string.Join('x', p.shape))))
            throw new ArgumentException("The compute model must have the master model's shape (the same config in another dtype).", "computeModel");
        return compute;
    }

    void CopyMasterToCompute()
    {
        if (_compute is null) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var (master, compute) in model.parameters().Zip(_compute.parameters())) compute.copy_(master);
    }

    /// <summary>The compute model's gradients become the master's, in float32.</summary>
    void CopyComputeGradientsToMaster()
    {
        if (_compute is null) return;
        using var scope = NewDisposeScope();
        // A gradient cannot be assigned here, but backward through sum(master * g) leaves exactly g (after zero_grad).
        var terms = model.parameters().Zip(_compute.parameters())
            .Where(p => p.Second.grad is not null)
            .Select(p => (p.First * p.Second.grad!.detach().to(p.First.dtype)).sum())
            .ToList();
        if (terms.Count > 0) stack(terms).sum().backward();
    }

    AdamW CreateOptimizer()
    {
        // Norm weights and biases are not decayed: pulling them to zero only hurts.
        var named = model.named_parameters().ToList();
        var decayed = named.Where(p => p.parameter.dim() >= 2).Select(p => p.parameter).ToList();
        var plain = named.Where(p => p.parameter.dim() < 2).Select(p => p.parameter).ToList();
        return optim.AdamW([
            new AdamW.ParamGroup(decayed, new AdamW.Options { LearningRate = _options.LearningRate, weight_decay = _options.WeightDecay }),
            new AdamW.ParamGroup(plain, new AdamW.Options { LearningRate = _options.LearningRate, weight_decay = 0 }),
        ], lr: _options.LearningRate, beta1: 0.9, beta2: 0.95);
    }

    int Resume(AdamW optimizer)
    {
        // A kill between the two moves of SaveCheckpoint leaves only the previous checkpoint, under .old.
        var old = CheckpointDirectory + ".old";
        if (!Directory.Exists(CheckpointDirectory) && Directory.Exists(old)) Directory.Move(old, CheckpointDirectory);
        var state = Path.Combine(CheckpointDirectory, StateFile);
        if (!File.Exists(state)) return 0;
        CheckpointState saved;
        try
        {
            saved = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(state))
                    ?? throw new InvalidDataException($"{state}: empty trainer state.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{state}: not a trainer state ({e.Message}). Delete {CheckpointDirectory} to start over.", e);
        }
        CheckSameRun(saved);
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var weights = HfCheckpoint.ReadWeights(CheckpointDirectory);
            var byName = ModelFiles.ToHuggingFace(model);
            foreach (var (name, tensor) in byName)
            {
                // Checkpoints from before settings were saved: a shape change must still be a message, not a native error.
                if (!weights.TryGetValue(name, out var stored) || !stored.shape.SequenceEqual(tensor.shape))
                    throw new InvalidOperationException(
                        $"{CheckpointDirectory} holds {(stored is null ? "no" : $"a [{string.Join(", ", stored.shape)}]")} tensor '{name}'; " +
                        $"this run's model needs [{string.Join(", ", tensor.shape)}]. Resume with the same model shape " +
                        $"(preset, --from) or delete {CheckpointDirectory} to start over.");
                tensor.copy_(stored);
            }
        }
        optimizer.load_state_dict(Path.Combine(CheckpointDirectory, OptimizerFile));
        return saved.Step;
    }

    void SaveCheckpoint(AdamW optimizer, int step)
    {
        // Write a complete folder beside the old one, then swap: a kill at any moment leaves one whole checkpoint.
        var temp = CheckpointDirectory + ".tmp";
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        ModelFiles.Save(model, temp);
        optimizer.save_state_dict(Path.Combine(temp, OptimizerFile));
        File.WriteAllText(Path.Combine(temp, StateFile),
            JsonSerializer.Serialize(new CheckpointState(step, _options.Steps) { Settings = CurrentSettings() }));
        var old = CheckpointDirectory + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(CheckpointDirectory)) Directory.Move(CheckpointDirectory, old);
        Directory.Move(temp, CheckpointDirectory);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>Everything that decides the weights a step produces, by the name a user knows it under.</summary>
    Dictionary<string, string> CurrentSettings()
    {
        static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        var settings = new Dictionary<string, string>
        {
            ["steps"] = _options.Steps.ToString(CultureInfo.InvariantCulture),
            ["accumulation"] = _options.GradientAccumulation.ToString(CultureInfo.InvariantCulture),
            ["lr"] = F(_options.LearningRate),
            ["weight-decay"] = F(_options.WeightDecay),
            ["warmup"] = F(_options.WarmupFraction),
            ["min-lr-fraction"] = F(_options.MinLearningRateFraction),
            ["clip"] = F(_options.ClipNorm),
            ["seed"] = _options.Seed.ToString(CultureInfo.InvariantCulture),
            ["model"] = JsonNode.Parse(model.Config.ToJson())!.ToJsonString(),
        };
        foreach (var (name, value) in RunSettings) settings[name] = value;
        return settings;
    }

    void CheckSameRun(CheckpointState saved)
    {
        var now = CurrentSettings();
        now["steps"] = _options.Steps.ToString(CultureInfo.InvariantCulture);
        var savedSettings = new Dictionary<string, string>(saved.Settings ?? []) { ["steps"] = saved.Steps.ToString(CultureInfo.InvariantCulture) };
        // Compare what both runs name; a setting only one of them has (an older checkpoint) cannot be checked.
        var differ = savedSettings.Keys.Intersect(now.Keys).Where(k => savedSettings[k] != now[k]).OrderBy(k => k == "model").ThenBy(k => k).ToList();
        if (differ.Count == 0) return;
        string Show(IReadOnlyDictionary<string, string> values) =>
            string.Join(", ", differ.Select(k => k == "model" ? $"model shape {ModelDiff(values[k], values == now ? savedSettings[k] : now[k])}" : $"{k} {values[k]}"));
        throw new InvalidOperationException(
            $"{CheckpointDirectory} was written by a run with {Show(savedSettings)}; this run asks for {Show(now)}. " +
            $"Resume with the saved values, or delete {CheckpointDirectory} to start over.");
    }

    /// <summary>The config.json fields in which <paramref name="json"/> differs from <paramref name="other"/>, with its values.</summary>
    static string ModelDiff(string json, string other)
    {
        var a = JsonNode.Parse(json)!.AsObject();
        var b = JsonNode.Parse(other)!.AsObject();
        var fields = a.Where(p => !JsonNode.DeepEquals(p.Value, b[p.Key])).Select(p => $"{p.Key}={p.Value?.ToJsonString()}");
        return "(" + string.Join(", ", fields) + ")";
    }

    sealed record CheckpointState(int Step, int Steps)
    {
        public Dictionary<string, string>? Settings { get; init; }
    }
}
