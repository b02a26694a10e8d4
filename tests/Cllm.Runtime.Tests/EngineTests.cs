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
        var options = new GenerationOptions { Decoder = DecoderKind.Lookahead, MaxNewTokens = 48 };
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
    public void CallsAfterDisposeThrow()
    {
        var engine = CllmEngine.Load(_folder.Path, new EngineOptions { ContextLength = 64 });
        engine.Dispose();
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateText("hello"));
        engine.Dispose(); // twice is fine
    }
}
