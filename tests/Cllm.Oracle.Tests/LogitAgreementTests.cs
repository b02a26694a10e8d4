using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Oracle.Tests;

/// <summary>Logits of every position agree with llama.cpp's (F32 weights, F32 KV cache, flash attention off).</summary>
[Collection(OracleCollection.Name)]
public sealed class LogitAgreementTests(OracleModels models, ITestOutputHelper output)
{
    // Gemma's GELU is table-rounded in llama.cpp, so its shapes are compared in GemmaOracleTests.
    public static TheoryData<string> Shapes => new(OracleModels.Shapes.Where(s => !s.StartsWith("gemma", StringComparison.Ordinal)));

    [Theory]
    [MemberData(nameof(Shapes))]
    public void LogitsAtEveryPositionAgreeWithin1e4(string shape)
    {
        var e = models.Get(shape);
        var vocab = e.Model.Config.VocabSize;
        Assert.Equal(vocab, e.LlamaCpp.VocabularySize);
        foreach (var (length, seed) in new[] { (7, 1), (33, 2), (96, 3) })
        {
            var prompt = OracleModels.RandomPrompt(vocab, length, seed);
            var theirs = e.LlamaCpp.Logits(prompt);
            var ours = OurLogits(e.Model, prompt);
            double worst = 0;
            var at = -1;
            for (var i = 0; i < length; i++)
                for (var v = 0; v < vocab; v++)
                {
                    var diff = Math.Abs(ours[i][v] - theirs[i][v]);
                    if (diff > worst) (worst, at) = (diff, i);
                }
            output.WriteLine($"{shape}, {length} tokens: max |difference| {worst:E2}, logit range {ours.SelectMany(x => x).Min():F2}..{ours.SelectMany(x => x).Max():F2}");
            Assert.True(worst < 1e-4, $"{shape}, prompt of {length}: max |logit difference| {worst:E2} at position {at}");
        }
    }

    internal static float[][] OurLogits(Transformer model, int[] prompt)
    {
        using var cache = new KvCache(model.Config, prompt.Length, model.DType, model.Device);
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        var logits = model.Forward(tensor(prompt.Select(t => (long)t).ToArray()).unsqueeze(0), 0, cache)[0];
        return Enumerable.Range(0, prompt.Length).Select(i => logits[i].data<float>().ToArray()).ToArray();
    }
}
