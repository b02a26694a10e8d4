using Cllm.Decoding;

namespace Cllm.Extensions.AI;

/// <summary>Which requests share lookahead's n-gram pool (n-grams of earlier prompts and answers used as drafts).</summary>
public enum NgramPoolScope
{
    /// <summary>Every client of the engine shares one pool: fastest, but a request's speed shows whether its text
    /// followed text another client's request wrote (a timing side channel between users).</summary>
    Engine,
    /// <summary>Each client has its own pool: one client is one trust domain (make a client per tenant).</summary>
    Client,
    /// <summary>Each conversation (<c>ChatOptions.ConversationId</c>) of a client has its own pool; a request
    /// without a ConversationId starts from its own prompt and keeps nothing.</summary>
    Conversation,
}

/// <summary>
/// How a <see cref="CllmChatClient"/> loads and runs its model. Binds from nested configuration, e.g.
/// <c>"Cllm": { "ModelPath": "models/cllm-tiny", "Engine": { "DType": "BFloat16" },
/// "Defaults": { "Decoder": "lookahead", "MaxNewTokens": 256 } }</c>.
/// </summary>
public sealed record CllmChatClientOptions
{
    /// <summary>Answer length when neither the request nor <see cref="Defaults"/> set one: long enough for the
    /// tool calls and answers of small models, short enough that an off-domain prompt cannot run to the end of
    /// a large context.</summary>
    public const int DefaultMaxOutputTokens = 512;

    /// <summary>Folder of a Hugging Face model (config.json, safetensors, tokenizer). Required when the model is loaded
    /// for the client (by the client's own constructor or by a DI registration).</summary>
    public string ModelPath { get; init; } = "";

    /// <summary>How the engine places the model: device, dtype, context, threads, n-gram pools, queue time-out.</summary>
    public EngineOptions Engine { get; init; } = new();

    /// <summary>Generation settings for what a request leaves unset (a request's raw <see cref="GenerationSettings"/>
    /// and ChatOptions come first). Unset here too: Jacobi decoding, block size 16, greedy,
    /// <see cref="DefaultMaxOutputTokens"/> tokens.</summary>
    public GenerationSettings Defaults { get; init; } = new();

    /// <summary>Chat format name (cllm, chatml, llama2, llama3, vicuna, instruction). Default: detected from the model folder.</summary>
    public string? ChatFormat { get; init; }

    /// <summary>The id responses report. Default: the model folder's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Which requests share lookahead's n-gram pool. Default: <see cref="Extensions.AI.NgramPoolScope.Client"/>.</summary>
    public NgramPoolScope NgramPoolScope { get; init; } = NgramPoolScope.Client;
}
