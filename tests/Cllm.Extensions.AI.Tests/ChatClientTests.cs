using System.Text.Json;
using Cllm.Decoding;
using Cllm.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>The client's contract, on a random-initialised model: its text is noise, the mechanics are real.</summary>
public sealed class ChatClientTests : IDisposable
{
    readonly TestLoggerFactory _logs = new();
    readonly CllmChatClient _client;

    // The default model's format, so tools are accepted (its markers are plain text to this tokenizer).
    public ChatClientTests() => _client = new CllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Random, ChatFormat = "cllm" });

    public void Dispose() => _client.Dispose();

    static List<ChatMessage> Ask(string text) => [new(ChatRole.User, text)];

    static ChatOptions Options(int maxTokens, string decoder = "jacobi") =>
        new() { MaxOutputTokens = maxTokens, RawRepresentationFactory = _ => new GenerationSettings { Decoder = DecoderKinds.Parse(decoder) } };

    [Fact]
    public async Task StreamingHasOneMessageAndOneUsageThatAddsUp()
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in _client.GetStreamingResponseAsync(Ask("Tell me about the weather."), Options(24)))
            updates.Add(u);

        Assert.True(updates.Count >= 2);
        Assert.Single(updates.Select(u => u.MessageId).Distinct());
        Assert.Single(updates.Select(u => u.ResponseId).Distinct());
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.All(updates, u => Assert.Equal(_client.ModelId, u.ModelId));
        Assert.All(updates, u => Assert.NotNull(u.CreatedAt));
        Assert.All(updates[..^1], u => Assert.Null(u.FinishReason));
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);

        var usage = Assert.Single(updates.SelectMany(u => u.Contents).OfType<UsageContent>()).Details;
        Assert.Contains(usage, updates[^1].Contents.OfType<UsageContent>().Select(c => c.Details));
        Assert.Equal(24, usage.OutputTokenCount);
        Assert.True(usage.InputTokenCount > 5);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        // Every token comes from a pass (the prefill makes the first) or was a guess a pass accepted.
        Assert.Equal(24, usage.AdditionalCounts![CllmChatClient.ForwardPassesCount] + usage.AdditionalCounts[CllmChatClient.FastForwardedTokensCount]);

        // GetResponseAsync gives the merged stream.
        var response = await _client.GetResponseAsync(Ask("Tell me about the weather."), Options(24));
        Assert.Equal(string.Concat(updates.Select(u => u.Text)), response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(usage.TotalTokenCount, response.Usage!.TotalTokenCount);
        Assert.Single(response.Messages);
        Assert.NotNull(response.Messages[0].MessageId);
        Assert.NotNull(response.ResponseId);
        Assert.NotEqual(updates[0].ResponseId, response.ResponseId);
    }

    [Fact]
    public async Task JacobiAndAutoregressiveGiveTheSameText()
    {
        var jacobi = await _client.GetResponseAsync(Ask("Once upon a time"), Options(40));
        var ar = await _client.GetResponseAsync(Ask("Once upon a time"), Options(40, "ar"));
        Assert.Equal(ar.Text, jacobi.Text);
        Assert.Equal(40, ar.Usage!.AdditionalCounts![CllmChatClient.ForwardPassesCount]); // prefill makes the first token
    }

    [Fact]
    public async Task StopSequencesMatchAcrossTokensAndAreNeverShown()
    {
        // One token per update with AR decoding: build a stop sequence from the end of one token's text and
        // the start of the next one's.
        var pieces = new List<string>();
        await foreach (var u in _client.GetStreamingResponseAsync(Ask("Write a story."), Options(48, "ar")))
            if (u.Text.Length > 0) pieces.Add(u.Text);
        string full = string.Concat(pieces);
        int k = Enumerable.Range(3, pieces.Count - 4).First(i => pieces[i].Length >= 2 && pieces[i + 1].Length >= 2);
        string stop = pieces[k][^2..] + pieces[k + 1][..2];
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];

        foreach (var decoder in new[] { "ar", "jacobi" })
        {
            var options = Options(48, decoder);
            options.StopSequences = ["never appears \u2603", stop];
            var streamed = new List<ChatResponseUpdate>();
            await foreach (var u in _client.GetStreamingResponseAsync(Ask("Write a story."), options))
                streamed.Add(u);
            Assert.Equal(expected, string.Concat(streamed.Select(u => u.Text)));
            Assert.Equal(ChatFinishReason.Stop, streamed[^1].FinishReason);
            Assert.Single(streamed.SelectMany(u => u.Contents).OfType<UsageContent>());
        }
    }

    [Fact]
    public async Task CancellationStopsTheStreamAndTheNextRequestWorks()
    {
        var expected = await _client.GetResponseAsync(Ask("Count to ten."), Options(16));
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in _client.GetStreamingResponseAsync(Ask("Write a long story."), Options(400, "ar"), cts.Token))
            {
                if (++seen == 3) cts.Cancel();
            }
        });
        Assert.Equal(3, seen); // nothing after the cancel
        var again = await _client.GetResponseAsync(Ask("Count to ten."), Options(16)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(expected.Text, again.Text);

        // A request cancelled before it starts never runs.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.GetResponseAsync(Ask("x"), Options(8), new CancellationToken(canceled: true)));
    }

    [Fact]
    public async Task ConcurrentCallsEqualSequentialOnes()
    {
        string[] prompts = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"];
        var sequential = new List<string>();
        foreach (var p in prompts)
            sequential.Add((await _client.GetResponseAsync(Ask(p), Options(12))).Text);
        var concurrent = await Task.WhenAll(prompts.Select(p => Task.Run(() => _client.GetResponseAsync(Ask(p), Options(12)))));
        Assert.Equal(sequential, concurrent.Select(r => r.Text));
    }

    [Fact]
    public async Task BadOptionsGiveClearErrors()
    {
        var e1 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { MaxOutputTokens = 0 }));
        Assert.Contains("MaxNewTokens", e1.Message); // validated once, by the engine, under its own name
        var e2 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { Temperature = -0.5f }));
        Assert.Contains("Temperature", e2.Message);
        var e3 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { TopP = 0 }));
        Assert.Contains("TopP", e3.Message);
        var e4 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"),
            new ChatOptions { RawRepresentationFactory = _ => new GenerationSettings { BlockSize = 1 } }));
        Assert.Contains("BlockSize", e4.Message);
        var e6 = await Assert.ThrowsAsync<ArgumentException>(() => _client.GetResponseAsync(Ask("hi"),
            new ChatOptions { RawRepresentationFactory = _ => new GenerationOptions() }));
        Assert.Contains(nameof(GenerationSettings), e6.Message);
        var e7 = await Assert.ThrowsAsync<ArgumentException>(() => _client.GetResponseAsync([new(ChatRole.User, "hi"), null!]));
        Assert.Contains("Message 1 is null", e7.Message);
        await Assert.ThrowsAsync<NotSupportedException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { FrequencyPenalty = 0.5f }));
        await Assert.ThrowsAsync<NotSupportedException>(() => _client.GetResponseAsync([new(ChatRole.User, [new DataContent(new byte[] { 1 }, "image/png")])]));

        using var small = new CllmChatClient(_client.Engine.ModelDirectory is { } dir
            ? new CllmChatClientOptions { ModelPath = dir, Engine = new() { ContextLength = 64 } }
            : throw new InvalidOperationException());
        var e5 = await Assert.ThrowsAsync<ArgumentException>(() => small.GetResponseAsync(Ask(string.Join(" ", Enumerable.Repeat("word", 100)))));
        Assert.Contains("context", e5.Message);
        Assert.Equal(4, (await small.GetResponseAsync(Ask("hi"), Options(4))).Usage!.OutputTokenCount); // short prompts still fit
    }

    [Theory]
    [InlineData("jacobi")]
    [InlineData("lookahead")]
    [InlineData("ar")]
    public async Task SamplingRunsOnTheChosenDecoderAndSeedsRepeat(string decoder)
    {
        ChatOptions Options(long seed) => new()
        {
            MaxOutputTokens = 16, Temperature = 0.9f, TopK = 50, Seed = seed,
            RawRepresentationFactory = _ => new GenerationSettings { Decoder = DecoderKinds.Parse(decoder), NgramSize = 3 },
        };
        var a = await _client.GetResponseAsync(Ask("Say something."), Options(42));
        var b = await _client.GetResponseAsync(Ask("Say something."), Options(42));
        var c = await _client.GetResponseAsync(Ask("Say something."), Options(7));
        var greedy = await _client.GetResponseAsync(Ask("Say something."), new ChatOptions
        {
            MaxOutputTokens = 16, RawRepresentationFactory = _ => new GenerationSettings { Decoder = DecoderKinds.Parse(decoder) },
        });
        Assert.Equal(a.Text, b.Text);
        Assert.NotEqual(a.Text, c.Text);
        Assert.NotEqual(a.Text, greedy.Text);
        Assert.Equal(16, a.Usage!.OutputTokenCount);
        var bad = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions
        {
            RawRepresentationFactory = _ => new GenerationSettings { Decoder = DecoderKind.Lookahead, NgramSize = 1 },
        }));
        Assert.Contains("NgramSize", bad.Message);
        var unknown = Assert.Throws<FormatException>(() => DecoderKinds.Parse("7"));
        Assert.Contains("lookahead", unknown.Message);
    }

    [Fact]
    public async Task CallersMessagesAndOptionsAreNotMutated()
    {
        List<ChatMessage> messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "hi")];
        var options = new ChatOptions
        {
            Instructions = "Answer in English.", MaxOutputTokens = 8, StopSequences = ["zzz"],
            Tools = [AIFunctionFactory.Create((string city) => "sunny", "get_weather", "Get a city's weather forecast.")],
            ToolMode = ChatToolMode.Auto, AdditionalProperties = new() { ["note"] = "kept" },
        };
        string Snapshot() => JsonSerializer.Serialize(messages, AIJsonUtilities.DefaultOptions) + JsonSerializer.Serialize(options, AIJsonUtilities.DefaultOptions);
        string before = Snapshot();
        _ = await _client.GetResponseAsync(messages, options);
        await foreach (var _ in _client.GetStreamingResponseAsync(messages, options)) { }
        Assert.Equal(before, Snapshot());
        Assert.Equal(2, messages.Count);
        Assert.Single(options.Tools);
    }

    [Fact]
    public async Task ARequiredCallIsAValidCallEvenFromARandomModel()
    {
        // A random model left alone writes no valid call; the grammar makes every token keep the call valid.
        using var client = new CllmChatClient(_client.Engine, new CllmChatClientOptions { ChatFormat = "cllm" });
        foreach (var seed in new long[] { 1, 2, 3 })
        {
            var options = new ChatOptions
            {
                MaxOutputTokens = 96, Seed = seed, Temperature = 1,
                Tools = [AIFunctionFactory.Create((string city, int days) => "sunny", "get_weather", "Get a city's weather forecast.")],
                ToolMode = ChatToolMode.RequireAny,
            };
            var response = await client.GetResponseAsync(Ask("Weather in Oslo?"), options);
            var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
            Assert.Equal("get_weather", call.Name);
            Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
            // The arguments follow the tool's schema: only declared names, each of its declared type.
            Assert.All(call.Arguments!.Keys, k => Assert.Contains(k, new[] { "city", "days" }));
            if (call.Arguments.TryGetValue("days", out var days)) Assert.True(days is long or int or JsonElement { ValueKind: JsonValueKind.Number });
        }
    }

    [Fact]
    public async Task JsonIsValidWhenJsonWasAskedFor()
    {
        // The random model writes garbage unconstrained (an "invalid_json" error before); with the grammar, a JSON object.
        foreach (var seed in new long[] { 1, 2 })
        {
            var options = Options(48);
            options.Seed = seed;
            options.Temperature = 1;
            options.ResponseFormat = ChatResponseFormat.Json;
            var response = await _client.GetResponseAsync(Ask("Give me JSON."), options);
            Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<ErrorContent>());
            using var document = JsonDocument.Parse(response.Text);
            Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
        }
    }

    [Fact]
    public async Task GetServiceGivesMetadataEngineAndTokenizer()
    {
        var metadata = _client.GetService<ChatClientMetadata>()!;
        Assert.Equal("cllm", metadata.ProviderName);
        Assert.Equal(_client.ModelId, metadata.DefaultModelId);
        Assert.Null(metadata.ProviderUri); // no local paths in telemetry or logs
        Assert.Same(_client.Engine, _client.GetService<CllmEngine>());
        Assert.Same(_client.Engine.Tokenizer, _client.GetService<TextTokenizer>());
        Assert.Same(_client, _client.GetService<CllmChatClient>());
        Assert.Null(_client.GetService<CllmEngine>("some key"));

        // Middleware sees through to it.
        using var pipeline = _client.AsBuilder().UseLogging(_logs).UseOpenTelemetry().Build();
        Assert.Equal("cllm", pipeline.GetService<ChatClientMetadata>()!.ProviderName);
        Assert.NotEmpty((await pipeline.GetResponseAsync(Ask("hi"), Options(4))).Text);
        Assert.NotEmpty(_logs.Entries);
        Assert.DoesNotContain(_logs.Entries, e => e.Message.Contains(TestModels.Random, StringComparison.Ordinal));
    }

    [Fact]
    public async Task TextBeforeAToolCallStreamsAndTheCallIsParsed()
    {
        // A chat format whose tool-call marker is a piece of what the random model writes anyway: the text
        // before it streams, the marker is matched across token boundaries, and the call is parsed from it.
        string full = (await _client.GetResponseAsync(Ask("Write a story."), Options(40, "ar"))).Text;
        string marker = full.Substring(full.Length / 2, 5);
        var format = new MarkerFormat(marker);
        using var client = new CllmChatClient(_client.Engine, chatFormat: format);
        var options = Options(40, "ar");
        options.Tools = [AIFunctionFactory.Create(() => "ok", "f", "Does f.")];

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(Ask("Write a story."), options))
            updates.Add(u);
        Assert.Equal(full[..full.IndexOf(marker, StringComparison.Ordinal)], string.Concat(updates.Select(u => u.Text)));
        Assert.True(updates.Count(u => u.Text.Length > 0) > 1); // streamed, not all at the end
        var call = Assert.Single(updates[^1].Contents.OfType<FunctionCallContent>());
        Assert.Equal("f", call.Name);
        Assert.StartsWith(marker, format.Parsed);
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
    }

    sealed class MarkerFormat(string marker) : IChatFormat
    {
        public string Parsed { get; private set; } = "";
        public string Name => "marker";
        public IReadOnlyList<string> StopTexts => ChatFormats.Cllm.StopTexts;
        public string? ToolCallStart => marker;
        public Cllm.Chat.ChatPrompt RenderPrompt(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
            ChatFormats.Cllm.RenderPrompt(turns, null, addGenerationPrompt); // the prompt the run without tools had
        public string ForcedToolCallPrefix(string? toolName) => marker;
        public IReadOnlyList<ToolCall>? ParseToolCalls(string text)
        {
            Parsed = text;
            return [new ToolCall("f", new Dictionary<string, object?>())];
        }
    }

    [Fact]
    public async Task WorksUnderDistributedCaching()
    {
        var cache = new Microsoft.Extensions.Caching.Distributed.MemoryDistributedCache(
            Microsoft.Extensions.Options.Options.Create(new Microsoft.Extensions.Caching.Memory.MemoryDistributedCacheOptions()));
        using var cached = _client.AsBuilder().UseDistributedCache(cache).Build();
        var first = await cached.GetResponseAsync(Ask("cache me"), Options(8));
        var second = await cached.GetResponseAsync(Ask("cache me"), Options(8));
        Assert.Equal(first.Text, second.Text);
        Assert.Equal(first.ResponseId, second.ResponseId); // served from the cache
    }

    [Fact]
    public async Task CallsAfterDisposeThrowObjectDisposed()
    {
        var client = new CllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Random });
        client.Dispose();
        client.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetResponseAsync(Ask("hi")));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { await foreach (var _ in client.GetStreamingResponseAsync(Ask("hi"))) { } });

        // A borrowed engine outlives its client.
        new CllmChatClient(_client.Engine).Dispose();
        Assert.NotEmpty((await _client.GetResponseAsync(Ask("hi"), Options(4))).Text);
    }
}
