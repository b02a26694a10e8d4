using Cllm.Checkpoints;
using Cllm.Decoding;
using Cllm.Tests.Checkpoints;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests;

public sealed class EngineTests : IDisposable
{
    readonly TempFolder _folder = new();

    public EngineTests()
    {
        using var model = TestModels.Create("gqa-tied", seed: 12);
        // The built-in tokenizer has 4096 pieces; the test model only 512 ids, so give it the full vocabulary.
        using var full = new Cllm.Model.Transformer(model.Config with { VocabSize = 4096 });
        full.InitializeRandom(12, TestModels.InitStd);
        ModelFiles.Save(full, _folder.Path);
        BuiltInTokenizers.WriteSentencePiece4k(_folder.Path);
    }

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void APhi3Mini4kFolderLoadsWithItsDefaultContextPastItsWindow()
    {
        // Phi-3-mini-4k: max_position_embeddings 4096, sliding_window 2047, no rope_scaling.
        using var folder = new TempFolder();
        var config = TestModels.Config("phi3-longrope") with { VocabSize = 4096, RopeScaling = null, MaxPositions = 4096, SlidingWindow = 2047 };
        using (var model = new Cllm.Model.Transformer(config))
        {
            model.InitializeRandom(3, TestModels.InitStd);
            ModelFiles.Save(model, folder.Path);
        }
        BuiltInTokenizers.WriteSentencePiece4k(folder.Path);
        using var engine = CllmEngine.Load(folder.Path);
        Assert.Equal("Phi3ForCausalLM", engine.Config.Architecture);
        Assert.Equal(4096, engine.ContextLength); // past the 2047 window: the window layers mask older keys
        var ar = engine.GenerateText("Once upon a time", new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 12 });
        var jacobi = engine.GenerateText("Once upon a time", new GenerationOptions { MaxNewTokens = 12 });
        Assert.Equal(12, ar.Tokens.Length);
        Assert.Equal(ar.Tokens, jacobi.Tokens);
    }

    [Fact]
    public void LoadsAFolderAndJacobiTextEqualsAutoregressive()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256 });
        Assert.Equal(256, engine.ContextLength);
        var ar = engine.GenerateText("The history of the printing press", new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 40 });
        var jacobi = engine.GenerateText("The history of the printing press", new GenerationOptions { MaxNewTokens = 40 });
        Assert.Equal(ar.Tokens, jacobi.Tokens);
        Assert.Equal(ar.Text, jacobi.Text);
        Assert.Equal(40, ar.Stats.ForwardPasses);

        // Streaming the chunks through the detokenizer gives the same text as decoding at the end.
        var detokenizer = engine.Tokenizer.CreateStreamingDetokenizer();
        var streamed = string.Concat(engine.Generate(engine.Tokenizer.Encode("The history of the printing press"),
            new GenerationOptions { MaxNewTokens = 40 }).Select(c => detokenizer.Append(c.Tokens))) + detokenizer.Flush();
        Assert.Equal(jacobi.Text, streamed);
    }

    [Fact]
    public void LookaheadPoolCarriesOverRequestsWithoutChangingTheOutput()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256 });
        const string prompt = "The history of the printing press";
        var options = new GenerationOptions { Decoder = DecoderKind.Lookahead, MaxNewTokens = 48, BlockSize = 8 };
        // BlockSize is pinned: the adaptive window picks sizes by measured time, so pass counts would vary run to run.
        var ar = engine.GenerateText(prompt, options with { Decoder = DecoderKind.Autoregressive });
        var cold = engine.GenerateText(prompt, options);
        // The second request finds the first one's output in the pool: same tokens, fewer passes.
        var warm = engine.GenerateText(prompt, options);
        Assert.Equal(ar.Tokens, cold.Tokens);
        Assert.Equal(ar.Tokens, warm.Tokens);
        Assert.True(warm.Stats.ForwardPasses < cold.Stats.ForwardPasses / 2,
            $"warm pool: {warm.Stats.ForwardPasses} passes, cold: {cold.Stats.ForwardPasses}");
        Assert.True(warm.Stats.PooledTokens > 0);

        engine.ClearNgramPool();
        Assert.Equal(cold.Stats.ForwardPasses, engine.GenerateText(prompt, options).Stats.ForwardPasses);
        // Clearing while a request runs neither blocks nor disturbs it.
        var streamed = new List<int>();
        foreach (var chunk in engine.Generate(engine.Tokenizer.Encode(prompt), options))
        {
            streamed.AddRange(chunk.Tokens);
            engine.ClearNgramPool();
        }
        Assert.Equal(ar.Tokens, streamed);
        // Another N or G starts a new pool rather than mixing n-gram sizes.
        Assert.Equal(ar.Tokens, engine.GenerateText(prompt, options with { NgramSize = 3, NgramsPerKey = 2 }).Tokens);

        using var isolated = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256, KeepNgramPool = false });
        var first = isolated.GenerateText(prompt, options);
        Assert.Equal(first.Stats.ForwardPasses, isolated.GenerateText(prompt, options).Stats.ForwardPasses);
    }

    [Fact]
    public void ConcurrentRequestsQueueAndMatchSequentialOnes()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 128 });
        var prompts = Enumerable.Range(0, 6).Select(i => $"Prompt number {i} about apples").ToArray();
        var sequential = prompts.Select(p => engine.GenerateText(p, new GenerationOptions { MaxNewTokens = 24 }).Tokens).ToArray();
        var concurrent = prompts.AsParallel().WithDegreeOfParallelism(6)
            .Select(p => engine.GenerateText(p, new GenerationOptions { MaxNewTokens = 24 }).Tokens).ToArray();
        for (var i = 0; i < prompts.Length; i++) Assert.Equal(sequential[i], concurrent[i]);
    }

    [Fact]
    public void BadInputGetsClearErrorsAndTheEngineStaysUsable()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 32 });
        var longPrompt = string.Join(" ", Enumerable.Repeat("apples and oranges", 30));
        var e = Assert.Throws<ArgumentException>(() => engine.GenerateText(longPrompt));
        Assert.Contains("context holds 32", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.GenerateText("hi", new GenerationOptions { MaxNewTokens = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.GenerateText("hi", new GenerationOptions { Temperature = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.GenerateText("hi", new GenerationOptions { Decoder = DecoderKind.Lookahead, NgramSize = 1 }));
        Assert.Equal(5, engine.GenerateText("hi", new GenerationOptions { MaxNewTokens = 5 }).Tokens.Length);

        Assert.Throws<ArgumentOutOfRangeException>(() => CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 1_000_000 }));
        var cuda = Assert.Throws<NotSupportedException>(() => CllmEngine.Load(_folder.Path, new EngineOptions { Device = "cuda" }));
        Assert.Contains("CUDA", cuda.Message);
        Assert.Throws<ArgumentException>(() => CllmEngine.Load(_folder.Path, new EngineOptions { Device = "tpu" }));
    }

    [Fact]
    public void NgramPoolKeysNeverShareNgrams()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256 });
        const string prompt = "The history of the printing press";
        var options = new GenerationOptions { Decoder = DecoderKind.Lookahead, MaxNewTokens = 48, BlockSize = 8, NgramPoolKey = "alice" };
        var cold = engine.GenerateText(prompt, options);
        var warm = engine.GenerateText(prompt, options);
        Assert.True(warm.Stats.ForwardPasses < cold.Stats.ForwardPasses);
        var bob = engine.GenerateText(prompt, options with { NgramPoolKey = "bob" });
        Assert.Equal(cold.Tokens, bob.Tokens);
        Assert.Equal((cold.Stats.ForwardPasses, cold.Stats.PooledTokens), (bob.Stats.ForwardPasses, bob.Stats.PooledTokens));
        var shared = engine.GenerateText(prompt, options with { NgramPoolKey = null }); // the engine-wide pool is a key of its own
        Assert.Equal(cold.Stats.ForwardPasses, shared.Stats.ForwardPasses);
        engine.ClearNgramPool("alice");
        Assert.Equal(cold.Stats.ForwardPasses, engine.GenerateText(prompt, options).Stats.ForwardPasses);
        Assert.Equal(warm.Stats.ForwardPasses, engine.GenerateText(prompt, options with { NgramPoolKey = "bob" }).Stats.ForwardPasses);
    }

    [Fact]
    public async Task AbandonedCancelledAndTimedOutRequestsReleaseTheEngine()
    {
        using var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256 });
        var ids = engine.Tokenizer.Encode("Once upon a time");
        var expected = engine.GenerateText("Once upon a time", new GenerationOptions { MaxNewTokens = 8 }).Tokens;
        var small = new GenerationOptions { MaxNewTokens = 8 };

        // Enumerators read once and then dropped without Dispose (async and sync): later requests still run.
        var abandoned = engine.GenerateAsync(ids, new GenerationOptions { MaxNewTokens = 200 }).GetAsyncEnumerator();
        Assert.True(await abandoned.MoveNextAsync());
        var dropped = engine.Generate(ids, new GenerationOptions { MaxNewTokens = 200 }).GetEnumerator();
        Assert.True(dropped.MoveNext());
        var next = await Collect(engine.GenerateAsync(ids, small)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(expected, next);

        // A request that waits behind a long one gives up by its token, or by the engine's time-out.
        var longOne = Collect(engine.GenerateAsync(ids, new GenerationOptions { MaxNewTokens = 200, Decoder = DecoderKind.Autoregressive }));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Collect(engine.GenerateAsync(ids, small, cancellationToken: cancel.Token)));
        await longOne;

        using var impatient = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256, QueueTimeout = TimeSpan.FromMilliseconds(10) });
        await using (var busy = impatient.GenerateAsync(ids, new GenerationOptions
        {
            MaxNewTokens = 240, Decoder = DecoderKind.Autoregressive,
        }).GetAsyncEnumerator())
        {
            Assert.True(await busy.MoveNextAsync()); // running: the next request has to wait
            var timeout = await Assert.ThrowsAsync<TimeoutException>(() => Collect(impatient.GenerateAsync(ids, small)));
            Assert.Contains("QueueTimeout", timeout.Message);
        }

        Assert.Equal(expected, await Collect(impatient.GenerateAsync(ids, small))); // and the engine still serves
    }

    [Fact]
    public async Task DisposeCancelsTheRunningRequestWithinAPass()
    {
        var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 256 });
        var ids = engine.Tokenizer.Encode("Once upon a time");
        var stream = engine.GenerateAsync(ids, new GenerationOptions { MaxNewTokens = 240, Decoder = DecoderKind.Autoregressive }).GetAsyncEnumerator();
        Assert.True(await stream.MoveNextAsync());
        var queued = Collect(engine.GenerateAsync(ids, new GenerationOptions { MaxNewTokens = 8 }));
        var abandoned = engine.GenerateAsync(ids, new GenerationOptions { MaxNewTokens = 240 }).GetAsyncEnumerator();
        _ = abandoned.MoveNextAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        engine.Dispose();
        clock.Stop();
        // Generous for a busy CI machine; the ObjectDisposedExceptions below show the requests were cancelled, not finished.
        Assert.True(clock.ElapsedMilliseconds < 5000, $"Dispose took {clock.ElapsedMilliseconds} ms");
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { while (await stream.MoveNextAsync()) { } });
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued);
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateAsync(ids));
    }

    static async Task<List<int>> Collect(IAsyncEnumerable<TokenChunk> chunks)
    {
        var tokens = new List<int>();
        await foreach (var chunk in chunks) tokens.AddRange(chunk.Tokens);
        return tokens;
    }

    [Fact]
    public void CallsAfterDisposeThrow()
    {
        var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 64 });
        engine.Dispose();
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateText("hello"));
        engine.Dispose(); // twice is fine
    }
}
