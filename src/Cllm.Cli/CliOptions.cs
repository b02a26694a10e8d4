using System.CommandLine;
using System.Text.Json;
using Cllm.Decoding;

namespace Cllm.Cli;

/// <summary>Options shared by several commands, and their parsing.</summary>
static class CliOptions
{
    public static Option<string> Model() => new("--model") { Description = "Model folder (Hugging Face layout).", Required = true };

    public static Option<string> DType() => new("--dtype")
    {
        Description = "float32 (exact reference), bfloat16 or float16.", DefaultValueFactory = _ => "float32",
    };

    public static Option<string> Device() => new("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };

    public static Option<int> Block() => new("--block") { Description = "Jacobi block size n.", DefaultValueFactory = _ => 16 };

    public static Option<int> MaxTokens() => new("--max-tokens") { Description = "Most new tokens per prompt.", DefaultValueFactory = _ => 128 };

    public static Option<string> Guess() => new("--guess")
    {
        Description = "Jacobi initial guess: random (tokens of the context, as the CLLM reference) or lookup (prompt lookup).",
        DefaultValueFactory = _ => "random",
    };

    public static Option<int?> Threads() => new("--threads") { Description = "TorchSharp intra-op threads." };

    public static Option<bool> Json() => new("--json") { Description = "Print one JSON object instead of text." };

    public static ModelDType ParseDType(string value) => value.ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" => ModelDType.Float32,
        "bfloat16" or "bf16" => ModelDType.BFloat16,
        "float16" or "f16" or "fp16" => ModelDType.Float16,
        _ => throw new ArgumentException($"Unknown dtype '{value}'; use float32, bfloat16 or float16."),
    };

    public static DecoderKind ParseDecoder(string value) => value.ToLowerInvariant() switch
    {
        "ar" or "autoregressive" => DecoderKind.Autoregressive,
        "jacobi" => DecoderKind.Jacobi,
        _ => throw new ArgumentException($"Unknown decoder '{value}'; use ar or jacobi."),
    };

    public static JacobiGuess ParseGuess(string value) => value.ToLowerInvariant() switch
    {
        "random" => JacobiGuess.RandomFromContext,
        "lookup" => JacobiGuess.PromptLookup,
        _ => throw new ArgumentException($"Unknown guess policy '{value}'; use random or lookup."),
    };

    public static readonly JsonSerializerOptions JsonOutput = new() { WriteIndented = true };

    /// <summary>Runs a command body, turning the errors a user can cause into one line on stderr and exit code 1.</summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or NotSupportedException
                                      or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine($"cllm: {e.Message}");
            return 1;
        }
    }
}
