using System.CommandLine;
using Cllm.Checkpoints;

namespace Cllm.Cli;

/// <summary><c>cllm export-gguf</c>: a model folder as a GGUF v3 file for llama.cpp (and LLamaSharp, Ollama, LM Studio).</summary>
static class ExportGgufCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var output = new Option<string>("--out") { Description = "GGUF file to write.", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Tensor precision: f32, f16 or bf16 (norms and biases stay f32).", DefaultValueFactory = _ => "f32" };
        var command = new Command("export-gguf", "Export a model folder (weights and tokenizer) as GGUF v3 for llama.cpp.") { model, output, dtype };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var type = parse.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "f32" or "float32" or "fp32" => GgufDType.F32,
                "f16" or "float16" or "fp16" => GgufDType.F16,
                "bf16" or "bfloat16" => GgufDType.BF16,
                var other => throw new ArgumentException($"Unknown --dtype '{other}'; use f32, f16 or bf16."),
            };
            var path = parse.GetValue(output)!;
            GgufExport.ExportFolder(parse.GetValue(model)!, path, type);
            Console.WriteLine($"Wrote {path} ({new FileInfo(path).Length / (1024.0 * 1024):F1} MiB, {type.ToString().ToLowerInvariant()})");
            return 0;
        }));
        return command;
    }
}
