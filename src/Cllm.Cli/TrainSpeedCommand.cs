using System.CommandLine;
using System.Diagnostics;
using Cllm.Model;
using Cllm.Native;
using Cllm.Training;
using TorchSharp;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm train-speed</c>: training tokens/s of float32 against mixed precision (forward and backward in bfloat16 on a
/// copy, float32 master weights and optimiser), the same AR steps of the trainer on a freshly initialised preset and
/// seeded random sequences. The two paths alternate in short rounds in one process, so that other load on a shared
/// machine hits both alike.
/// </summary>
static class TrainSpeedCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model shape.", DefaultValueFactory = _ => "cllm-tiny" };
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size.", DefaultValueFactory = _ => 1024 };
        var batch = new Option<int>("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 16 };
        var length = new Option<int>("--length") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 128 };
        var steps = new Option<int>("--steps") { Description = "Steps per round and path.", DefaultValueFactory = _ => 5 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds (each runs both paths).", DefaultValueFactory = _ => 3 };
        var compute = new Option<string>("--compute") { Description = "The mixed path's compute dtype.", DefaultValueFactory = _ => "bfloat16" };
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var command = new Command("train-speed", "Training tokens/s: float32 against mixed precision (bf16 compute, f32 master weights).")
        {
            preset, vocab, batch, length, steps, rounds, compute, threads, json,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            TorchNative.EnsureLoaded();
            if (parse.GetValue(threads) is { } t) torch.set_num_threads(t);
            var config = ModelConfig.Preset(parse.GetValue(preset)!) with { VocabSize = parse.GetValue(vocab) };
            var computeType = CllmEngine.ToScalarType(CliOptions.ParseDType(parse.GetValue(compute)!));
            int batchSize = parse.GetValue(batch), tokens = parse.GetValue(length), stepCount = parse.GetValue(steps);
            if (batchSize <= 0 || tokens < 2 || stepCount <= 0 || parse.GetValue(rounds) <= 0)
                throw new ArgumentException("--batch, --steps and --rounds must be positive and --length at least 2.");
            var random = new Random(1);
            var sequences = Enumerable.Range(0, 8 * batchSize)
                .Select(_ => Enumerable.Range(0, tokens).Select(_ => random.Next(config.VocabSize)).ToArray()).ToList();
            var rates = new Dictionary<string, List<double>> { ["float32"] = [], ["mixed"] = [] };
            var losses = new Dictionary<string, List<double>> { ["float32"] = [], ["mixed"] = [] };
            // On a shared machine wall-clock rates move with other load; CPU time (with one thread) much less.
            var cpuRates = new Dictionary<string, List<double>> { ["float32"] = [], ["mixed"] = [] };
            var folder = Directory.CreateTempSubdirectory("cllm-train-speed-").FullName;
            try
            {
                for (var round = 0; round < parse.GetValue(rounds); round++)
                    foreach (var path in rates.Keys)
                    {
                        using var model = new Transformer(config);
                        model.InitializeRandom(1);
                        using var copy = path == "mixed" ? new Transformer(config, computeType) : null;
                        var options = new TrainOptions { Steps = stepCount, LearningRate = 1e-3, CheckpointEvery = int.MaxValue };
                        var dir = Path.Combine(folder, $"{path}-{round}");
                        TrainProgress? last = null;
                        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                        new Trainer(model, options, dir, copy).Run(Objectives.Autoregressive(copy ?? model, sequences, batchSize, seed: 1), p => last = p);
                        var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                        rates[path].Add(last!.TokensPerSecond);
                        cpuRates[path].Add(last.Tokens / cpuSeconds);
                        losses[path].Add(last.Loss);
                        Console.Error.WriteLine($"round {round + 1} {path}: {last.TokensPerSecond:F0} tokens/s, {last.Tokens / cpuSeconds:F0} tokens per CPU second, " +
                                                $"loss after {stepCount} steps {last.Loss:F4}");
                    }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }

            double f32 = rates["float32"].Sum(), mixed = rates["mixed"].Sum();
            var result = new Dictionary<string, object?>
            {
                ["preset"] = parse.GetValue(preset), ["parameters"] = config.ParameterCount, ["batch"] = batchSize, ["length"] = tokens,
                ["steps_per_round"] = stepCount, ["threads"] = torch.get_num_threads(), ["compute"] = parse.GetValue(compute),
                ["float32_tokens_per_second"] = rates["float32"].Select(r => Math.Round(r, 1)).ToArray(),
                ["mixed_tokens_per_second"] = rates["mixed"].Select(r => Math.Round(r, 1)).ToArray(),
                ["float32_loss"] = losses["float32"].Select(l => Math.Round(l, 4)).ToArray(),
                ["mixed_loss"] = losses["mixed"].Select(l => Math.Round(l, 4)).ToArray(),
                ["mixed_over_float32"] = Math.Round(mixed / f32, 3),
                ["float32_tokens_per_cpu_second"] = cpuRates["float32"].Select(r => Math.Round(r, 1)).ToArray(),
                ["mixed_tokens_per_cpu_second"] = cpuRates["mixed"].Select(r => Math.Round(r, 1)).ToArray(),
                ["mixed_over_float32_cpu"] = Math.Round(cpuRates["mixed"].Sum() / cpuRates["float32"].Sum(), 3),
            };
            if (parse.GetValue(json)) Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(result, CliOptions.JsonOutput));
            else Console.WriteLine($"mixed ({parse.GetValue(compute)} compute) / float32 training tokens/s: {result["mixed_over_float32"]} " +
                                   $"(per CPU second: {result["mixed_over_float32_cpu"]})");
            return 0;
        }));
        return command;
    }
}
