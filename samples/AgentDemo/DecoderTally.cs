using System.Diagnostics;
using System.Runtime.CompilerServices;
using Cllm.Decoding;
using Cllm.Extensions.AI;
using Microsoft.Extensions.AI;

namespace Cllm.Samples.AgentDemo;

/// <summary>
/// Middleware that adds up, per decoder, what each model call cost: generated tokens, forward passes (from
/// the usage the Cllm client reports) and the wall-clock time of the call.
/// </summary>
sealed class DecoderTally(IChatClient inner, string defaultDecoder) : DelegatingChatClient(inner)
{
    public sealed record Row(string Decoder, long Tokens, long Passes, double Seconds)
    {
        public double TokensPerPass => Passes == 0 ? 0 : (double)Tokens / Passes;
        public double TokensPerSecond => Seconds == 0 ? 0 : Tokens / Seconds;
    }

    readonly Dictionary<string, Row> _rows = [];

    public IReadOnlyCollection<Row> Rows => _rows.Values;

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string decoder = options?.RawRepresentationFactory?.Invoke(this) is GenerationSettings { Decoder: { } kind }
            ? DecoderKinds.Name(kind) : defaultDecoder;
        var clock = Stopwatch.StartNew();
        long tokens = 0, passes = 0;
        await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            foreach (var usage in update.Contents.OfType<UsageContent>())
            {
                tokens += usage.Details.OutputTokenCount ?? 0;
                passes += usage.Details.AdditionalCounts?.GetValueOrDefault(CllmChatClient.ForwardPassesCount) ?? 0;
            }

            yield return update;
        }

        var row = _rows.GetValueOrDefault(decoder) ?? new Row(decoder, 0, 0, 0);
        _rows[decoder] = row with { Tokens = row.Tokens + tokens, Passes = row.Passes + passes, Seconds = row.Seconds + clock.Elapsed.TotalSeconds };
    }

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);
}
