using Cllm.Decoding;
using Microsoft.Extensions.AI;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>
/// Stop sequences through the public client on a <see cref="ScriptedModel"/>, whose answer is a known text: every
/// split of a stop across one to four tokens, stops that are prefixes of each other, stops around an emoji that
/// arrives as four byte tokens, and near misses, under autoregressive decoding (one token per update) and Jacobi
/// decoding (several tokens per pass). The text shown must be exactly the answer up to the first stop: no part of
/// a matched stop, and nothing held back for ever when a stop does not match.
/// </summary>
public sealed class StopSequenceTests : IDisposable
{
    // Distinct tokens only (the scripted model's next token depends on the current one alone).
    const string Script = "Dear Kim, our big red fox \U0001F600 jumps over six lazy dogs.";
    const string Emoji = "\U0001F600";

    readonly ScriptedModel _model = new(Script);
    readonly CllmChatClient _client;

    public StopSequenceTests() =>
        _client = new CllmChatClient(new CllmChatClientOptions { ModelPath = _model.Directory, ChatFormat = "cllm" });

    public void Dispose()
    {
        _client.Dispose();
        _model.Dispose();
    }

    ChatOptions Options(string decoder, params string[] stops) => new()
    {
        MaxOutputTokens = _model.Tokens.Length,
        StopSequences = stops,
        RawRepresentationFactory = _ => new GenerationSettings { Decoder = DecoderKinds.Parse(decoder) },
    };

    async Task<(List<string> Pieces, ChatFinishReason? Reason)> Stream(string decoder, params string[] stops)
    {
        var pieces = new List<string>();
        ChatFinishReason? reason = null;
        await foreach (var update in _client.GetStreamingResponseAsync([new(ChatRole.User, "Write.")], Options(decoder, stops)))
        {
            if (update.Text.Length > 0) pieces.Add(update.Text);
            reason = update.FinishReason ?? reason;
        }
        return (pieces, reason);
    }

    /// <summary>The answer token by token (autoregressive: one token per update; the emoji's first three byte
    /// tokens show nothing until the fourth completes it).</summary>
    async Task<List<string>> Pieces()
    {
        var (pieces, reason) = await Stream("ar");
        Assert.Equal(ChatFinishReason.Length, reason);
        Assert.Contains(Emoji, string.Concat(pieces));
        Assert.EndsWith("lazy dogs.", string.Concat(pieces));
        return pieces;
    }

    async Task Check(string full, string[] stops, string because, bool whole = true)
    {
        var first = stops.Select(s => full.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        var expected = first < 0 ? full : full[..first];
        foreach (var decoder in new[] { "ar", "jacobi" })
        {
            var (pieces, reason) = await Stream(decoder, stops);
            var shown = string.Concat(pieces);
            Assert.True(expected == shown,
                $"{decoder}, stops [{string.Join(" | ", stops)}] ({because}): shown \"{shown}\", expected \"{expected}\"");
            Assert.Equal(first < 0 ? ChatFinishReason.Length : ChatFinishReason.Stop, reason);
        }
        if (!whole) return;
        var response = await _client.GetResponseAsync([new(ChatRole.User, "Write.")], Options("jacobi", stops));
        Assert.Equal(expected, response.Text);
    }

    [Fact]
    public async Task TheScriptedModelAnswersItsScriptWithAnyDecoder()
    {
        var full = string.Concat(await Pieces());
        var (jacobi, reason) = await Stream("jacobi");
        Assert.Equal(full, string.Concat(jacobi));
        Assert.Equal(ChatFinishReason.Length, reason);
        var response = await _client.GetResponseAsync([new(ChatRole.User, "Other words.")], Options("jacobi"));
        Assert.Equal(full, response.Text);
        Assert.Equal(_model.Tokens.Length, response.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task TheEndOfSequenceTokenEndsTheAnswerAndIsNotShown()
    {
        var full = string.Concat(await Pieces());
        foreach (var decoder in new[] { "ar", "jacobi" })
        {
            var options = Options(decoder);
            options.MaxOutputTokens = _model.Tokens.Length + 8;
            var pieces = new List<string>();
            ChatFinishReason? reason = null;
            await foreach (var update in _client.GetStreamingResponseAsync([new(ChatRole.User, "Write.")], options))
            {
                pieces.Add(update.Text);
                reason = update.FinishReason ?? reason;
            }
            Assert.Equal(full, string.Concat(pieces));
            Assert.Equal(ChatFinishReason.Stop, reason);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task AStopSplitAcrossTokensIsNeverShown(int tokens)
    {
        var pieces = await Pieces();
        var full = string.Concat(pieces);
        var starts = new int[pieces.Count];
        for (var i = 1; i < pieces.Count; i++) starts[i] = starts[i - 1] + pieces[i - 1].Length;
        var cases = 0;
        for (var k = tokens - 1; k + tokens <= pieces.Count; k += 3)
        {
            var last = k + tokens - 1;
            // From the first or the last character of piece k to the first character or the end of piece k + tokens - 1.
            foreach (var from in new[] { starts[k], starts[k] + pieces[k].Length - 1 }.Distinct())
                foreach (var to in new[] { starts[last] + 1, starts[last] + pieces[last].Length }.Distinct())
                {
                    if (to - from < 1 || (tokens > 1 && to <= starts[last]) || from < starts[k]) continue;
                    if (char.IsLowSurrogate(full[from]) || char.IsHighSurrogate(full[to - 1])) continue; // whole characters
                    await Check(full, ["no such words", full[from..to]], $"{tokens} tokens from piece {k}", whole: false);
                    cases++;
                }
        }
        Assert.True(cases >= (pieces.Count - tokens) / 3, $"only {cases} stops tried");
    }

    [Fact]
    public async Task StopsThatArePrefixesOfEachOtherStopAtTheEarliestMatch()
    {
        var full = string.Concat(await Pieces());
        await Check(full, ["big red", "big"], "the longer one first");
        await Check(full, ["big", "big red"], "the shorter one first");
        await Check(full, ["big redder", "big r"], "the longer one never matches, the shorter one does");
        await Check(full, ["fox", "our big red fox"], "a later stop that contains an earlier match");
        await Check(full, ["our big red fox", "fox"], "the same, listed the other way round");
        await Check(full, ["dogs.!"], "a near miss at the very end: all of the answer is shown");
        await Check(full, ["lazy dogs. Then"], "a near miss longer than the rest of the answer");
        await Check(full, ["s", "six"], "a one-character stop");
    }

    [Fact]
    public async Task StopsAroundAnEmojiAreMatchedWholeAndNearMissesShowEverything()
    {
        var full = string.Concat(await Pieces());
        var at = full.IndexOf(Emoji, StringComparison.Ordinal);
        await Check(full, [Emoji], "the emoji alone");
        await Check(full, ["x " + Emoji], "ending with the emoji");
        await Check(full, [Emoji + " ju"], "starting with the emoji");
        await Check(full, [full[(at - 5)..(at + 5)]], "straddling the emoji");
        await Check(full, ["\U0001F601"], "an emoji sharing the first three bytes and the high surrogate");
        await Check(full, ["fox \U0001F601", "red"], "a near miss through the emoji and an earlier match");
        await Check(full, ["x " + Emoji + " jumps", "x " + Emoji], "prefixes of each other around the emoji");
    }
}
