using System.CommandLine;
using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Native;
using Cllm.Text;

namespace Cllm.Cli;

/// <summary><c>cllm init</c>: a random-initialised model in Hugging Face layout with a real tokenizer.</summary>
static class InitCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = $"One of: {string.Join(", ", ModelConfig.PresetNames)}.", Required = true };
        var output = new Option<string>("--out") { Description = "Folder to write.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 0 };
        var std = new Option<double>("--std") { Description = "Standard deviation of the weights.", DefaultValueFactory = _ => 0.02 };
        var dtype = CliOptions.DType();
        var command = new Command("init", "Write a random-initialised model (config.json, model.safetensors, tokenizer) for tests and benchmarks.")
        {
            preset, output, seed, std, dtype,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            TorchNative.EnsureLoaded();
            var config = ModelConfig.Preset(parse.GetValue(preset)!);
            var folder = parse.GetValue(output)!;
            using var model = new Transformer(config, CllmEngine.ToScalarType(CliOptions.ParseDType(parse.GetValue(dtype)!)));
            model.InitializeRandom(parse.GetValue(seed), parse.GetValue(std));
            ModelFiles.Save(model, folder);
            BuiltInTokenizers.WriteSentencePiece4k(folder);
            Console.WriteLine($"Wrote {parse.GetValue(preset)} ({config.ParameterCount / 1e6:F1}M parameters) to {folder}");
            return 0;
        }));
        return command;
    }
}
