using Cllm.Text;

namespace Cllm.Chat;

/// <summary>
/// What ends an assistant turn for one model: the ids the decoder stops at (EOS and the format's stop texts that
/// are single tokens) and the stop texts matched on decoded text (the rest, plus the caller's stop sequences).
/// </summary>
public sealed record ChatStops(IReadOnlyList<int> Ids, IReadOnlyList<string> Texts)
{
    /// <summary>The stops of <paramref name="format"/> on <paramref name="tokenizer"/>, with the model's EOS ids and extra texts.</summary>
    public static ChatStops For(IChatFormat format, TextTokenizer tokenizer, IEnumerable<int> eosIds, IEnumerable<string>? extraTexts = null)
    {
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(eosIds);
        int[] ids = [.. eosIds.Concat(format.StopTexts.Select(tokenizer.TokenToId).OfType<int>()).Distinct()];
        string[] texts = [.. format.StopTexts.Where(t => tokenizer.TokenToId(t) is null)
            .Concat(extraTexts?.Where(t => !string.IsNullOrEmpty(t)) ?? []).Distinct(StringComparer.Ordinal)];
        return new ChatStops(ids, texts);
    }
}
