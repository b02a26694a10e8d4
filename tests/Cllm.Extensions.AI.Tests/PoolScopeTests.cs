using System.Diagnostics;
using Cllm.Decoding;
using Microsoft.Extensions.AI;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>
/// Lookahead's n-gram pool is scoped by <see cref="NgramPoolScope"/>: a request that repeats text seen in its own
/// scope needs fewer passes; one in another scope runs exactly as on a cold engine (it sees none of those n-grams).
/// </summary>
public sealed class PoolScopeTests : IDisposable
{
    const string Prompt = "The history of the printing press";
    readonly CllmEngine _engine = CllmEngine.Load(TestModels.Random, new EngineOptions { ContextLength = 256 });

    public void Dispose() => _engine.Dispose();

    CllmChatClient Client(NgramPoolScope scope) => new(_engine, new CllmChatClientOptions
    {
        ChatFormat = "cllm", NgramPoolScope = scope,
        Defaults = new() { Decoder = DecoderKind.Lookahead, MaxNewTokens = 48, NgramSize = 3, BlockSize = 8 },
    });

    static async Task<(string Text, long Passes)> Ask(CllmChatClient client, string? conversation = null)
    {
        var r = await client.GetResponseAsync(Prompt, new ChatOptions { ConversationId = conversation });
        return (r.Text, r.Usage!.AdditionalCounts![CllmChatClient.ForwardPassesCount]);
    }

    [Fact]
    public async Task ClientsAndConversationsNeverSeeEachOthersNgrams()
    {
        using var a = Client(NgramPoolScope.Client);
        var cold = await Ask(a);
        var warm = await Ask(a);
        Assert.Equal(cold.Text, warm.Text); // lossless either way
        Assert.True(warm.Passes < cold.Passes, $"warm {warm.Passes} vs cold {cold.Passes}: the pool should help its own client");

        using var b = Client(NgramPoolScope.Client);
        Assert.Equal(cold, await Ask(b)); // a's n-grams are invisible to b

        using var c = Client(NgramPoolScope.Conversation);
        Assert.Equal(cold, await Ask(c, "one"));
        Assert.Equal(warm.Passes, (await Ask(c, "one")).Passes);
        Assert.Equal(cold, await Ask(c, "two"));
        Assert.Equal(cold, await Ask(c));
        Assert.Equal(cold, await Ask(c)); // without a conversation id nothing is kept

        _engine.ClearNgramPool();
        using var e1 = Client(NgramPoolScope.Engine);
        using var e2 = Client(NgramPoolScope.Engine);
        Assert.Equal(cold, await Ask(e1));
        Assert.Equal(warm.Passes, (await Ask(e2)).Passes); // engine scope: shared
    }

    [Fact]
    public async Task DisposingAClientEndsItsStreamWithinAPassAndLeavesTheEngine()
    {
        var client = new CllmChatClient(_engine, new CllmChatClientOptions
        {
            ChatFormat = "cllm", Defaults = new() { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 200 },
        });
        var clock = new Stopwatch();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in client.GetStreamingResponseAsync("Write a long story."))
            {
                if (++seen != 3) continue;
                clock.Start();
                client.Dispose();
            }
        });
        clock.Stop();
        Assert.True(clock.ElapsedMilliseconds < 5000, $"the stream ended {clock.ElapsedMilliseconds} ms after Dispose");
        Assert.True(seen <= 4, $"{seen} updates"); // at most the pass that was running
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetResponseAsync("hi"));
        using var other = Client(NgramPoolScope.Client);
        Assert.NotEmpty((await other.GetResponseAsync("hi", new ChatOptions { MaxOutputTokens = 4 })).Text);

        // A client that loaded its engine: Dispose returns within a pass even with a long request running.
        var owner = new CllmChatClient(new CllmChatClientOptions
        {
            ModelPath = TestModels.Random, ChatFormat = "cllm", Defaults = new() { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 400 },
        });
        var stream = owner.GetStreamingResponseAsync("Write a long story.").GetAsyncEnumerator();
        Assert.True(await stream.MoveNextAsync());
        var disposeClock = Stopwatch.StartNew();
        owner.Dispose();
        disposeClock.Stop();
        Assert.True(disposeClock.ElapsedMilliseconds < 5000, $"Dispose took {disposeClock.ElapsedMilliseconds} ms");
        await Assert.ThrowsAnyAsync<Exception>(async () => { while (await stream.MoveNextAsync()) { } });
        await stream.DisposeAsync();
    }
}
