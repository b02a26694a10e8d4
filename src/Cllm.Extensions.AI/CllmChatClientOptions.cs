using Cllm.Decoding;

namespace Cllm.Extensions.AI;

/// <summary>
/// How a Cllm chat client loads and runs its model. The client itself (an IChatClient over
/// <see cref="CllmEngine"/>) lands with its own issue; the options are fixed here so the engine and the
/// client agree on names.
/// </summary>
public sealed record CllmChatClientOptions
{
    /// <summary>Folder of a Hugging Face model (config.json, safetensors, tokenizer).</summary>
    public required string ModelPath { get; init; }
    public DecoderKind Decoder { get; init; } = DecoderKind.Jacobi;
    public int BlockSize { get; init; } = 16;
    public string Device { get; init; } = "cpu";
    public ModelDType DType { get; init; } = ModelDType.Float32;
    public int? ContextLength { get; init; }

    public EngineOptions ToEngineOptions() => new() { Device = Device, DType = DType, ContextLength = ContextLength };
}
