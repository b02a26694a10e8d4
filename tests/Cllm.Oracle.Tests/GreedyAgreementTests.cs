using Cllm.Decoding;
using Cllm.Model;

namespace Cllm.Oracle.Tests;

/// <summary>64-token greedy continuations equal llama.cpp's (its own greedy sampler) token for token.</summary>
[Collection(OracleCollection.Name)]
public sealed class GreedyAgreementTests(OracleModels models)
{
    const int PromptsPerShape = 10;
    const int NewTokens = 64;

    public static TheoryData<string> Shapes => new(OracleModels.Shapes);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GreedyContinuationsAreIdentical(string shape)
    {
        var e = models.Get(shape);
        var vocab = e.Model.Config.VocabSize;
        for (var p = 0; p < PromptsPerShape; p++)
        {
            var prompt = OracleModels.RandomPrompt(vocab, 3 + 5 * p, 100 + p);
            var ours = OurGreedy(e.Model, prompt, NewTokens, stopIds: []);
            var theirs = e.LlamaCpp.Greedy(prompt, NewTokens);
            Assert.Equal(NewTokens, ours.Length);
            Assert.True(ours.SequenceEqual(theirs),
                $"{shape}, prompt {p}: first difference at token {FirstDifference(ours, theirs)}\n ours:   {string.Join(' ', ours)}\n theirs: {string.Join(' ', theirs)}");
        }
    }

    internal static int[] OurGreedy(Transformer model, IReadOnlyList<int> prompt, int maxNew, IReadOnlyCollection<int> stopIds)
    {
        using var cache = new KvCache(model.Config, prompt.Count + maxNew + 1, model.DType, model.Device);
        var options = new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = maxNew, StopTokenIds = stopIds };
        return Decoder.Generate(model, cache, prompt, options, new DecodingStats(), stopIds).SelectMany(c => c.Tokens).ToArray();
    }

    internal static int FirstDifference(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        var i = 0;
        while (i < a.Count && i < b.Count && a[i] == b[i]) i++;
        return i;
    }
}
