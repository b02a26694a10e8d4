using Cllm.Decoding;

namespace Cllm.Cli.Bench;

/// <summary>The options of one <c>cllm bench</c> call, read once from the command line.</summary>
sealed record BenchSettings
{
    public required string ModelDirectory { get; init; }
    /// <summary>Comma-separated decoder names, as given to <c>--decoders</c>.</summary>
    public required string Decoders { get; init; }
    public string? PromptsPath { get; init; }
    public int? PromptCount { get; init; }
    public required int MaxTokens { get; init; }
    public int? Block { get; init; }
    /// <summary>The <c>--guess</c> policy as written (also passed on to the memory probes).</summary>
    public required string Guess { get; init; }
    public required int Runs { get; init; }
    /// <summary>The <c>--dtype</c> value as written (also passed on to the memory probes).</summary>
    public required string DType { get; init; }
    public required string Device { get; init; }
    public int? Threads { get; init; }
    public required int Context { get; init; }
    public required bool Profile { get; init; }
    public string? Gguf { get; init; }
    public required int NgramSize { get; init; }
    public required int NgramsPerKey { get; init; }
    public required float Temperature { get; init; }
    /// <summary>Applies the lookahead and sampling options (<see cref="CliOptions.Decoding"/>) to a decoder's options.</summary>
    public required Func<GenerationOptions, GenerationOptions> ApplyDecoding { get; init; }

    public ModelDType ModelDType => CliOptions.ParseDType(DType);

    public JacobiGuess GuessPolicy => CliOptions.ParseGuess(Guess);
}
