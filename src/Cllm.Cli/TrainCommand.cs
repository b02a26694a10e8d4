using System.CommandLine;
using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Native;
using Cllm.Text;
using Cllm.Training;
using Cllm.Training.Data;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm train</c>: pre-training from scratch (<c>--objective ar</c>) or CLLM consistency training of an
/// existing model on its Jacobi trajectories (<c>--objective consistency</c>). Resumes from the output
/// folder's checkpoint when there is one.
/// </summary>
static class TrainCommand
{
    static readonly string[] TokenizerFiles = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

    public static Command Create()
    {
        var objective = new Option<string>("--objective") { Description = "ar or consistency.", Required = true };
        var output = new Option<string>("--out") { Description = "Output model folder (also holds the checkpoint).", Required = true };
        var data = new Option<string?>("--data") { Description = "ar: training examples (JSONL from cllm data)." };
        var preset = new Option<string?>("--preset") { Description = "ar from scratch: model shape (vocab size comes from the tokenizer)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "ar from scratch: folder with tokenizer.model + tokenizer_config.json." };
        var from = new Option<string?>("--from") { Description = "Start from this model folder (required for consistency)." };
        var trajectories = new Option<string?>("--trajectories") { Description = "consistency: trajectories JSONL from cllm collect." };
        var loss = new Option<string>("--loss") { Description = "consistency: global or local.", DefaultValueFactory = _ => "global" };
        var arWeight = new Option<double>("--ar-weight") { Description = "consistency: weight of the AR loss.", DefaultValueFactory = _ => 10 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Sequences (ar) or trajectory states (consistency) per micro-batch.", DefaultValueFactory = _ => 16 };
        var accumulation = new Option<int>("--accumulation") { DefaultValueFactory = _ => 1 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var weightDecay = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.1 };
        var warmup = new Option<double>("--warmup") { Description = "Warm-up fraction of the steps.", DefaultValueFactory = _ => 0.03 };
        var clip = new Option<double>("--clip") { DefaultValueFactory = _ => 1.0 };
        var maxLength = new Option<int>("--max-length") { Description = "ar: longest training sequence in tokens.", DefaultValueFactory = _ => 512 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => 200 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 1 };
        var dtype = CliOptions.DType();
        var threads = CliOptions.Threads();
        var metrics = new Option<string?>("--metrics") { Description = "Append one JSON line per step to this file." };
        var compute = new Option<string?>("--compute")
        {
            Description = "Mixed precision: run forward and backward in this dtype (bfloat16 or float16) on a copy of the model, " +
                          "keeping the --dtype master weights (float32) for the optimiser. Default: compute in --dtype.",
        };
        var command = new Command("train", "Pre-train a model (ar) or turn it into a CLLM (consistency).")
        {
            objective, output, data, preset, tokenizer, from, trajectories, loss, arWeight, steps, batch, accumulation, lr,
            weightDecay, warmup, clip, maxLength, checkpointEvery, seed, dtype, threads, metrics, compute,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            TorchNative.EnsureLoaded();
            if (parse.GetValue(threads) is { } t) TorchSharp.torch.set_num_threads(t);
            var outDir = parse.GetValue(output)!;
            var scalar = CllmEngine.ToScalarType(CliOptions.ParseDType(parse.GetValue(dtype)!));
            var options = new TrainOptions
            {
                Steps = parse.GetValue(steps), GradientAccumulation = parse.GetValue(accumulation), LearningRate = parse.GetValue(lr),
                WeightDecay = parse.GetValue(weightDecay), WarmupFraction = parse.GetValue(warmup), ClipNorm = parse.GetValue(clip),
                CheckpointEvery = parse.GetValue(checkpointEvery), Seed = parse.GetValue(seed),
            }.Validate();
            var batchSize = parse.GetValue(batch);
            if (batchSize <= 0) throw new ArgumentException("--batch must be positive.");

            Transformer model;
            string tokenizerSource;
            Func<Transformer, Func<int, int, MicroBatchLoss>> objectiveFn; // built on the model that runs forward and backward
            switch (parse.GetValue(objective))
            {
                case "ar":
                {
                    var dataPath = parse.GetValue(data) ?? throw new ArgumentException("--objective ar needs --data.");
                    if (parse.GetValue(from) is { } start)
                    {
                        (model, tokenizerSource) = (ModelFiles.Load(start, scalar), start);
                        model.train();
                    }
                    else
                    {
                        tokenizerSource = parse.GetValue(tokenizer) ?? throw new ArgumentException("--objective ar from scratch needs --tokenizer (or --from).");
                        var text = TextTokenizer.Load(tokenizerSource);
                        var config = ModelConfig.Preset(parse.GetValue(preset) ?? throw new ArgumentException("--objective ar from scratch needs --preset (or --from).")) with
                        {
                            VocabSize = text.VocabularySize, BosTokenId = text.BosId, EosTokenIds = text.EosIds.ToArray(),
                        };
                        model = new Transformer(config, scalar);
                        model.InitializeRandom(options.Seed);
                    }
                    var tok = TextTokenizer.Load(tokenizerSource);
                    var max = parse.GetValue(maxLength);
                    var sequences = CorpusWriter.ReadExamples(dataPath)
                        .Select(e => tok.Encode(e.Prompt + e.Completion))
                        .Select(ids => ids.Length > max ? ids[..max] : ids)
                        .ToList();
                    Console.Error.WriteLine($"{sequences.Count} sequences, {sequences.Sum(s => (long)s.Length)} tokens, " +
                                            $"model {model.Config.ParameterCount / 1e6:F2}M parameters");
                    objectiveFn = trainee => Objectives.Autoregressive(trainee, sequences, batchSize, options.Seed);
                    break;
                }
                case "consistency":
                {
                    tokenizerSource = parse.GetValue(from) ?? throw new ArgumentException("--objective consistency needs --from (the teacher model).");
                    var path = parse.GetValue(trajectories) ?? throw new ArgumentException("--objective consistency needs --trajectories.");
                    model = ModelFiles.Load(tokenizerSource, scalar);
                    model.train();
                    var kind = parse.GetValue(loss) switch
                    {
                        "global" => ConsistencyKind.Global,
                        "local" => ConsistencyKind.Local,
                        var other => throw new ArgumentException($"Unknown --loss '{other}'; use global or local."),
                    };
                    var data2 = TrajectoryCollector.Read(path).ToList();
                    Console.Error.WriteLine($"{data2.Count} trajectories, {data2.Sum(x => x.States.Length)} states");
                    var weight = parse.GetValue(arWeight);
                    objectiveFn = trainee => Objectives.Consistency(trainee, data2, kind, weight, options.Seed, batchSize);
                    break;
                }
                default:
                    throw new ArgumentException($"Unknown --objective '{parse.GetValue(objective)}'; use ar or consistency.");
            }

            var computeType = parse.GetValue(compute) is { } c ? CllmEngine.ToScalarType(CliOptions.ParseDType(c)) : (TorchSharp.torch.ScalarType?)null;
            if (computeType == scalar) computeType = null;
            using var computeModel = computeType is { } ct ? new Transformer(model.Config, ct) : null;
            using (model)
            {
                Directory.CreateDirectory(outDir);
                foreach (var file in TokenizerFiles)
                    if (File.Exists(Path.Combine(tokenizerSource, file)))
                        File.Copy(Path.Combine(tokenizerSource, file), Path.Combine(outDir, file), overwrite: true);
                var metricsPath = parse.GetValue(metrics);
                // Everything besides TrainOptions that decides the weights: resuming with other values is refused.
                static string FileSetting(string? path) => path is null ? "none" : $"{Path.GetFileName(path)} ({new FileInfo(path).Length} bytes)";
                var settings = new Dictionary<string, string>
                {
                    ["objective"] = parse.GetValue(objective)!, ["batch"] = batchSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["dtype"] = scalar.ToString(), ["from"] = parse.GetValue(from) is { } f ? Path.GetFullPath(f) : "none",
                };
                if (parse.GetValue(objective) == "ar")
                {
                    settings["data"] = FileSetting(parse.GetValue(data));
                    settings["preset"] = parse.GetValue(preset) ?? "none";
                    settings["max-length"] = parse.GetValue(maxLength).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                else
                {
                    settings["trajectories"] = FileSetting(parse.GetValue(trajectories));
                    settings["loss"] = parse.GetValue(loss)!;
                    settings["ar-weight"] = parse.GetValue(arWeight).ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                }
                settings["compute"] = computeModel?.DType.ToString() ?? scalar.ToString();
                if (computeModel is not null)
                    Console.Error.WriteLine($"mixed precision: forward and backward in {computeModel.DType}, master weights in {model.DType}");
                var resumed = new Trainer(model, options, outDir, computeModel) { RunSettings = settings }
                    .Run(objectiveFn(computeModel ?? model), p => Report(p, metricsPath));
                Console.Error.WriteLine();
                Console.WriteLine($"Trained {options.Steps - resumed} steps (resumed at {resumed}); model written to {outDir}");
            }
            return 0;
        }));
        return command;
    }

    static void Report(TrainProgress p, string? metricsPath)
    {
        var parts = string.Concat(p.Parts.Select(x => $" {x.Key} {x.Value:F3}"));
        const int width = 24;
        var filled = (int)(width * (double)p.Step / p.Steps);
        Console.Error.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] step {p.Step}/{p.Steps} loss {p.Loss:F4}{parts} " +
                            $"lr {p.LearningRate:E2} {p.TokensPerSecond:F0} tok/s ETA {p.Eta:hh\\:mm\\:ss}   ");
        if (metricsPath is null) return;
        File.AppendAllText(metricsPath, JsonSerializer.Serialize(new
        {
            step = p.Step, steps = p.Steps, loss = p.Loss, parts = p.Parts, lr = p.LearningRate, grad_norm = p.GradNorm,
            tokens = p.Tokens, tokens_per_second = p.TokensPerSecond, eta_seconds = p.Eta.TotalSeconds,
        }) + "\n");
    }
}
