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

    /// <summary>--block for decoding: unset lets the engine choose n per pass from measured pass costs and acceptance.</summary>
    public static Option<int?> AdaptiveBlock() => new("--block")
    {
        Description = "Jacobi block size n (lookahead's window). Default: chosen by the engine from this machine's pass costs and the observed acceptance.",
    };

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

    /// <summary>Decoder names as everywhere else (<see cref="DecoderKinds.Parse"/>); a bad one is a usage error.</summary>
    public static DecoderKind ParseDecoder(string value)
    {
        try
        {
            return DecoderKinds.Parse(value);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }

    public static string Name(DecoderKind kind) => DecoderKinds.Name(kind);

    public static JacobiGuess ParseGuess(string value) => value.ToLowerInvariant() switch
    {
        "random" => JacobiGuess.RandomFromContext,
        "lookup" => JacobiGuess.PromptLookup,
        _ => throw new ArgumentException($"Unknown guess policy '{value}'; use random or lookup."),
    };

    /// <summary>Lookahead and sampling options, shared by generate, bench and eval.</summary>
    public sealed class Decoding
    {
        public Option<int> NgramSize { get; } = new("--ngram")
        {
            Description = "Lookahead n-gram size N (each pooled n-gram drafts N-1 tokens).", DefaultValueFactory = _ => GenerationOptions.DefaultNgramSize,
        };
        public Option<int> NgramsPerKey { get; } = new("--ngrams-per-key")
        {
            Description = "Lookahead G: n-grams kept and verified per first token.", DefaultValueFactory = _ => GenerationOptions.DefaultNgramsPerKey,
        };
        public Option<float> Temperature { get; } = new("--temperature") { Description = "0 is greedy; > 0 samples (exactly up to float rounding, with every decoder)." };
        public Option<float> TopP { get; } = new("--top-p") { Description = "Nucleus sampling mass.", DefaultValueFactory = _ => 1f };
        public Option<int> TopK { get; } = new("--top-k") { Description = "Sample among the k most likely tokens (0: all)." };
        public Option<long?> Seed { get; } = new("--seed") { Description = "Seed for sampling and random guesses." };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { NgramSize, NgramsPerKey, Temperature, TopP, TopK, Seed }) command.Options.Add(option);
        }

        public GenerationOptions Apply(GenerationOptions options, ParseResult parse) => options with
        {
            NgramSize = parse.GetValue(NgramSize), NgramsPerKey = parse.GetValue(NgramsPerKey),
            Temperature = parse.GetValue(Temperature), TopP = parse.GetValue(TopP), TopK = parse.GetValue(TopK),
            Seed = parse.GetValue(Seed) ?? options.Seed,
        };
    }

    public static readonly JsonSerializerOptions JsonOutput = new() { WriteIndented = true };

    /// <summary>Runs a command body, turning the errors a user can cause into one line on stderr and exit code 1.</summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or NotSupportedException
                                      or UnauthorizedAccessException or InvalidOperationException or Text.Templates.TemplateException)
        {
            Console.Error.WriteLine($"cllm: {e.Message}");
            return 1;
        }
    }
}
