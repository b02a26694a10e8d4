using Cllm.Constraints;
using Cllm.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Decoding;

/// <summary>Runs one request with the chosen decoder: prefill, then one <see cref="TokenChunk"/> per forward pass.</summary>
internal static class Decoder
{
    /// <summary>
    /// Generates after <paramref name="prompt"/>. The cache is cleared first and left holding the request.
    /// Cancellation is checked between passes; a cancelled request ends with <see cref="FinishReason.Cancelled"/>
    /// after the last complete pass, without throwing. <paramref name="stats"/> fills as chunks are enumerated.
    /// Lookahead uses <paramref name="pool"/> (its N and G must match the options) and leaves it holding this
    /// request's n-grams too; without one it starts from an empty pool.
    /// </summary>
    public static IEnumerable<TokenChunk> Generate(Transformer model, KvCache cache, IReadOnlyList<int> prompt,
        GenerationOptions options, DecodingStats stats, IReadOnlyCollection<int> eosIds, CancellationToken cancellationToken = default,
        NgramPool? pool = null, BlockSizer? sizer = null)
    {
        options.Validate();
        if (pool is not null && (pool.N != options.NgramSize || pool.PerKey != options.NgramsPerKey))
            throw new ArgumentException(
                $"The n-gram pool holds {pool.N}-grams, {pool.PerKey} a key; the options ask for {options.NgramSize} and {options.NgramsPerKey}.", nameof(pool));
        if (prompt.Count == 0) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        if (prompt.Count >= cache.Capacity)
            throw new ArgumentException(
                $"The prompt has {prompt.Count} tokens but the context holds {cache.Capacity} (with room for at least one new token); " +
                "shorten the prompt or raise the context length.", nameof(prompt));
        var vocab = model.Config.VocabSize;
        foreach (var id in prompt)
            if ((uint)id >= (uint)vocab)
                throw new ArgumentException($"Prompt token id {id} is outside the model's vocabulary (0..{vocab - 1}).", nameof(prompt));

        if (options.Constraint is { } constraint && constraint.Vocabulary.Size > vocab)
            throw new ArgumentException(
                $"The constraint was built for a vocabulary of {constraint.Vocabulary.Size} tokens but the model has {vocab}; " +
                "build it with this model's tokenizer.", nameof(options));

        var run = new Run(options, stats, options.StopTokenIds ?? eosIds, prompt, cache.Capacity);
        return options.Decoder switch
        {
            DecoderKind.Jacobi => JacobiDecoder.Decode(model, cache, run, pool: null, sizer, cancellationToken),
            DecoderKind.Lookahead => JacobiDecoder.Decode(model, cache, run, pool ?? new NgramPool(options.NgramSize, options.NgramsPerKey),
                sizer, cancellationToken),
            _ => AutoregressiveDecoder.Decode(model, cache, run, cancellationToken),
        };
    }

    /// <summary>Runs one forward pass and returns the logits' work as plain arrays, inside its own dispose scope.</summary>
    internal static T Pass<T>(Transformer model, KvCache cache, ReadOnlySpan<int> tokens, int start, bool lastOnly, Func<Tensor, T> read,
        PassLayout? layout = null)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var input = tensor(tokens.ToArray().Select(t => (long)t).ToArray(), int64, model.Device).unsqueeze(0);
        var logits = model.Forward(input, start, cache, lastOnly, layout);
        return read(logits[0]);
    }

    internal static int[] Argmax(Tensor logits)
    {
        using var ids = logits.argmax(-1).to(int64, CPU);
        return ids.data<long>().Select(x => (int)x).ToArray();
    }
}

/// <summary>The bookkeeping every decoder shares: the context so far, limits, stop ids, stats.</summary>
sealed class Run(GenerationOptions options, DecodingStats stats, IReadOnlyCollection<int> stopIds, IReadOnlyList<int> prompt,
    int capacity)
{
    public GenerationOptions Options { get; } = options;
    public DecodingStats Stats { get; } = stats;
    public IReadOnlyList<int> Prompt { get; } = prompt;
    /// <summary>Prompt followed by every token made final.</summary>
    public List<int> Context { get; } = [.. prompt];
    public int Remaining => Options.MaxNewTokens - Stats.GeneratedTokens;
    public bool Done => Stats.FinishReason != FinishReason.None;

    /// <summary>The constraint's state after the tokens made final; null without a constraint.</summary>
    public ConstraintCursor? Cursor { get; private set; } = options.Constraint?.Start();

    /// <summary>New tokens the request can make at most: MaxNewTokens, or fewer where the context ends first
    /// (the last token needs no cache entry).</summary>
    public int TokenLimit => Math.Min(Options.MaxNewTokens, capacity - Prompt.Count + 1);

    public bool IsStop(int token) => stopIds.Contains(token);

    /// <summary>
    /// The token that row <paramref name="row"/> of <paramref name="logits"/> ([rows, vocab]) chooses as new token
    /// number <paramref name="index"/>, with the text so far in <paramref name="cursor"/>: the logits of the tokens
    /// the constraint forbids there are -inf, and a token must leave room to complete the text in the tokens left.
    /// Autoregressive and Jacobi decoding both choose through here, so they choose alike.
    /// </summary>
    public int ChooseConstrained(Sampler sampler, Tensor logits, int row, int index, ConstraintCursor cursor)
    {
        var width = (int)logits.shape[^1];
        var allowed = cursor.Allowed(width, TokenLimit - index - 1, stopIds);
        var mask = new float[width];
        for (var i = 0; i < width; i++) if (!allowed[i]) mask[i] = float.NegativeInfinity;
        using var scope = NewDisposeScope();
        var masked = (logits[row] + tensor(mask, float32, logits.device).to_type(logits.dtype)).unsqueeze(0);
        return sampler.Choose(masked, [index])[0];
    }

    public void Begin()
    {
        Stats.PromptTokens = Prompt.Count;
        Stats.FinishReason = FinishReason.None;
        Stats.Clock.Restart();
    }

    /// <summary>Records a pass that made <paramref name="tokens"/> final: cuts them at the first stop id, at the end
    /// of a finished constraint and at MaxNewTokens, and returns what to emit.</summary>
    public int[] Accept(ReadOnlySpan<int> tokens)
    {
        var take = Math.Min(tokens.Length, Remaining);
        for (var i = 0; i < take; i++)
        {
            if (stopIds.Contains(tokens[i]))
            {
                take = i + 1;
                Stats.FinishReason = FinishReason.Stop;
                break;
            }
            if (Cursor is null) continue;
            Cursor = Cursor.Advance(tokens[i]);
            if (Cursor.IsFinished)
            {
                // The constrained text is complete and nothing may follow it: the request is done.
                take = i + 1;
                Stats.FinishReason = FinishReason.Stop;
                break;
            }
        }
        var emitted = tokens[..take].ToArray();
        if (Stats.ForwardPasses == 0) Stats.PrefillTime = Stats.Clock.Elapsed;
        Stats.RecordPass(emitted.Length);
        Stats.DecodeTime = Stats.Clock.Elapsed - Stats.PrefillTime;
        Context.AddRange(emitted);
        if (Stats.FinishReason == FinishReason.None && Remaining == 0) Stats.FinishReason = FinishReason.Length;
        return emitted;
    }

    /// <summary>Ends the run for a full context or a cancellation, if nothing ended it before.</summary>
    public void End(FinishReason reason)
    {
        if (Stats.FinishReason == FinishReason.None) Stats.FinishReason = reason;
    }
}
