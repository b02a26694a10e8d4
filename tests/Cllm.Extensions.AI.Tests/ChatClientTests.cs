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
    public ChatClientTests() => _client = new CllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Random, ChatFormat = "cllm" }, _logs);

    public void Dispose() => _client.Dispose();

    static List<ChatMessage> Ask(string text) => [new(ChatRole.User, text)];

    static ChatOptions Options(int maxTokens, string decoder = "jacobi") =>
        new() { MaxOutputTokens = maxTokens, AdditionalProperties = new() { [CllmChatClient.DecoderKey] = decoder } };

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
        Assert.Contains("MaxOutputTokens", e1.Message);
        var e2 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { Temperature = -0.5f }));
        Assert.Contains("Temperature", e2.Message);
        var e3 = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { TopP = 0 }));
        Assert.Contains("TopP", e3.Message);
        var e4 = await Assert.ThrowsAsync<ArgumentException>(() => _client.GetResponseAsync(Ask("hi"),
            new ChatOptions { AdditionalProperties = new() { [CllmChatClient.BlockSizeKey] = "lots" } }));
        Assert.Contains(CllmChatClient.BlockSizeKey, e4.Message);
        await Assert.ThrowsAsync<NotSupportedException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { ModelId = "gpt-4o" }));
        await Assert.ThrowsAsync<NotSupportedException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions { FrequencyPenalty = 0.5f }));
        await Assert.ThrowsAsync<NotSupportedException>(() => _client.GetResponseAsync([new(ChatRole.User, [new DataContent(new byte[] { 1 }, "image/png")])]));

        using var small = new CllmChatClient(_client.Engine.ModelDirectory is { } dir
            ? new CllmChatClientOptions { ModelPath = dir, ContextLength = 64 }
            : throw new InvalidOperationException());
        var e5 = await Assert.ThrowsAsync<ArgumentException>(() => small.GetResponseAsync(Ask(string.Join(" ", Enumerable.Repeat("word", 100)))));
        Assert.Contains("context", e5.Message);
        Assert.Equal(4, (await small.GetResponseAsync(Ask("hi"), Options(4))).Usage!.OutputTokenCount); // short prompts still fit
    }

    [Fact]
    public async Task GenerationOptionsFromTheRawRepresentationFactoryAreTheBase()
    {
        var options = new ChatOptions { RawRepresentationFactory = _ => new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 5 } };
        var response = await _client.GetResponseAsync(Ask("hi"), options);
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Equal(5, response.Usage.AdditionalCounts![CllmChatClient.ForwardPassesCount]);
        options.MaxOutputTokens = 3; // ChatOptions win
        Assert.Equal(3, (await _client.GetResponseAsync(Ask("hi"), options)).Usage!.OutputTokenCount);
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
            AdditionalProperties = new() { [CllmChatClient.DecoderKey] = decoder, [CllmChatClient.NgramSizeKey] = 3 },
        };
        var a = await _client.GetResponseAsync(Ask("Say something."), Options(42));
        var b = await _client.GetResponseAsync(Ask("Say something."), Options(42));
        var c = await _client.GetResponseAsync(Ask("Say something."), Options(7));
        var greedy = await _client.GetResponseAsync(Ask("Say something."), new ChatOptions
        {
            MaxOutputTokens = 16, AdditionalProperties = new() { [CllmChatClient.DecoderKey] = decoder },
        });
        Assert.Equal(a.Text, b.Text);
        Assert.NotEqual(a.Text, c.Text);
        Assert.NotEqual(a.Text, greedy.Text);
        Assert.Equal(16, a.Usage!.OutputTokenCount);
        // The decoder asked for ran (no silent fallback to autoregressive): the request log names it.
        Assert.Contains(_logs.Entries, e => e.Message.Contains($"with {(decoder == "ar" ? "Autoregressive" : decoder)} decoding", StringComparison.OrdinalIgnoreCase));
        var bad = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions
        {
            AdditionalProperties = new() { [CllmChatClient.DecoderKey] = "lookahead", [CllmChatClient.NgramSizeKey] = 1 },
        }));
        Assert.Contains("NgramSize", bad.Message);
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => _client.GetResponseAsync(Ask("hi"), new ChatOptions
        {
            AdditionalProperties = new() { [CllmChatClient.DecoderKey] = "7" },
        }));
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
            ToolMode = ChatToolMode.Auto, AdditionalProperties = new() { [CllmChatClient.DecoderKey] = "jacobi" },
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
    public async Task AMalformedToolCallComesBackAsTextWithAWarning()
    {
        // Forcing a call makes the random model write one: it can't produce valid JSON.
        using var client = new CllmChatClient(_client.Engine, new CllmChatClientOptions { ChatFormat = "cllm" }, loggerFactory: _logs);
        var options = new ChatOptions
        {
            MaxOutputTokens = 12,
            Tools = [AIFunctionFactory.Create((string city) => "sunny", "get_weather", "Get a city's weather forecast.")],
            ToolMode = ChatToolMode.RequireAny,
        };
        var response = await client.GetResponseAsync(Ask("Weather in Oslo?"), options);
        Assert.StartsWith("<tool_call>", response.Text);
        Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("tool call"));
    }

    [Fact]
    public async Task InvalidJsonIsReportedWhenJsonWasAskedFor()
    {
        var options = Options(8);
        options.ResponseFormat = ChatResponseFormat.Json;
        var response = await _client.GetResponseAsync(Ask("Give me JSON."), options);
        var error = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<ErrorContent>());
        Assert.Equal("invalid_json", error.ErrorCode);
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("JSON"));
    }

    [Fact]
    public void AJsonAnswerEndsWithItsFirstCompleteValue()
    {
        var scanner = new CllmChatClient.JsonValueScanner();
        Assert.Equal(-1, scanner.Feed(" {\"a\": \"}"));   // a brace inside a string does not close
        Assert.Equal(-1, scanner.Feed("x\\\"}\", \"b\": [1, {\"c\""));
        Assert.Equal(6, scanner.Feed(": 2}]} and then some"));
        Assert.Equal(-1, new CllmChatClient.JsonValueScanner().Feed("plain text }"));
    }

    [Fact]
    public async Task GetServiceGivesMetadataEngineAndTokenizer()
    {
        var metadata = _client.GetService<ChatClientMetadata>()!;
        Assert.Equal("cllm", metadata.ProviderName);
        Assert.Equal(_client.ModelId, metadata.DefaultModelId);
        Assert.True(metadata.ProviderUri!.IsFile);
        Assert.Same(_client.Engine, _client.GetService<CllmEngine>());
        Assert.Same(_client.Engine.Tokenizer, _client.GetService<TextTokenizer>());
        Assert.Same(_client, _client.GetService<CllmChatClient>());
        Assert.Null(_client.GetService<CllmEngine>("some key"));

        // Middleware sees through to it.
        using var pipeline = _client.AsBuilder().UseLogging(_logs).UseOpenTelemetry().Build();
        Assert.Equal("cllm", pipeline.GetService<ChatClientMetadata>()!.ProviderName);
        Assert.NotEmpty((await pipeline.GetResponseAsync(Ask("hi"), Options(4))).Text);
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
        public string Render(IReadOnlyList<ChatTurn> turns, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt) =>
            ChatFormats.Cllm.Render(turns, null, addGenerationPrompt); // the prompt the run without tools had
        public string ForcedToolCallPrefix(string? toolName) => marker;
        public IReadOnlyList<ToolCall>? ParseToolCalls(string text)
        {
            Parsed = text;
            return [new ToolCall("f", new Dictionary<string, object?>())];
        }
    }

    [Fact]
    public async Task MetricsAndActivitiesAreReported()
    {
        var measured = new System.Collections.Concurrent.ConcurrentDictionary<string, double>();
        using var meters = new System.Diagnostics.Metrics.MeterListener();
        meters.InstrumentPublished = (instrument, listener) => { if (instrument.Meter.Name == CllmChatClient.TelemetrySourceName) listener.EnableMeasurementEvents(instrument); };
        meters.SetMeasurementEventCallback<double>((instrument, value, _, _) => measured[instrument.Name] = value);
        meters.SetMeasurementEventCallback<long>((instrument, value, _, _) => measured.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
        meters.Start();
        var activities = new List<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == CllmChatClient.TelemetrySourceName,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Add,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);

        await _client.GetResponseAsync(Ask("hi"), Options(10));
        Assert.Equal(1.0, measured["cllm.tokens_per_pass"], 3); // a random model accepts no guesses
        Assert.True(measured["cllm.tokens_per_second"] > 0);
        Assert.True(measured["cllm.forward_passes"] >= 10);
        var activity = Assert.Single(activities);
        Assert.Equal(10, activity.GetTagItem("gen_ai.usage.output_tokens"));
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
