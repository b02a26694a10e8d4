using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Oracle.Tests;

/// <summary>
/// Phi-3's longrope past the original length. llama.cpp takes the long factors when its context holds more than
/// original_context_length positions; Cllm does when its KV cache does. With equal contexts both must agree, and
/// the long factors must change the logits (else this test would prove nothing about them).
/// </summary>
[Collection(OracleCollection.Name)]
public sealed class LongRopeTests(OracleModels models, ITestOutputHelper output)
{
    const int LongContext = 2048; // past the shape's original length, 1024

    [Fact]
    public void LongFactorsAgreeWithLlamaCppWhenTheContextExceedsTheOriginalLength()
    {
        var e = models.Get("phi3-longrope");
        Assert.True(LongContext > e.Model.Config.RopeScaling!.OriginalMaxPositions);
        using var llama = new LlamaCppRunner(e.Gguf, contextSize: LongContext);
        var vocab = e.Model.Config.VocabSize;
        var prompt = OracleModels.RandomPrompt(vocab, 40, 9);

        var theirs = llama.Logits(prompt);
        var ours = Logits(e.Model, prompt, LongContext);
        var worst = MaxDifference(ours, theirs);
        var shortVsLong = MaxDifference(ours, e.LlamaCpp.Logits(prompt));
        output.WriteLine($"long factors: max |difference| vs llama.cpp {worst:E2}; short vs long logits differ by {shortVsLong:F3}");
        Assert.True(worst < 1e-4, $"long-factor logits differ from llama.cpp's by {worst:E2}");
        Assert.True(shortVsLong > 1e-2, $"short and long factors give nearly the same logits ({shortVsLong:E2})");

        for (var p = 0; p < 3; p++)
        {
            var start = OracleModels.RandomPrompt(vocab, 5 + 7 * p, 300 + p);
            var oursGreedy = Greedy(e.Model, start, 48, LongContext);
            var theirsGreedy = llama.Greedy(start, 48);
            Assert.True(oursGreedy.SequenceEqual(theirsGreedy),
                $"prompt {p}: first difference at token {GreedyAgreementTests.FirstDifference(oursGreedy, theirsGreedy)}");
        }
    }

    static float[][] Logits(Transformer model, int[] prompt, int context)
    {
        using var cache = new KvCache(model.Config, context, model.DType, model.Device);
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        var logits = model.Forward(tensor(prompt.Select(t => (long)t).ToArray()).unsqueeze(0), 0, cache)[0];
        return Enumerable.Range(0, prompt.Length).Select(i => logits[i].data<float>().ToArray()).ToArray();
    }

    static int[] Greedy(Transformer model, int[] prompt, int maxNew, int context)
    {
        using var cache = new KvCache(model.Config, context, model.DType, model.Device);
        var options = new Decoding.GenerationOptions { Decoder = Decoding.DecoderKind.Autoregressive, MaxNewTokens = maxNew, StopTokenIds = [] };
        return Decoding.Decoder.Generate(model, cache, prompt, options, new Decoding.DecodingStats(), []).SelectMany(c => c.Tokens).ToArray();
    }

    static double MaxDifference(float[][] a, float[][] b) => a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => (double)Math.Abs(x.First - x.Second)));
}
