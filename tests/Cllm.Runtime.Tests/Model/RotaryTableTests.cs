using Cllm.Decoding;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Model;

/// <summary>RoPE tables cover the positions in use and grow on demand: a model addressing many positions does not
/// hold tables for all of them, and positions past the first table are rotated exactly as if computed up front.</summary>
public sealed class RotaryTableTests
{
    [Fact]
    public void TablesGrowOnDemandAndLogitsMatchAFreshModel()
    {
        var config = ModelConfig.Preset("tiny") with { VocabSize = 256, MaxPositions = 8192 };
        using var model = new Transformer(config);
        model.InitializeRandom(3, TestModels.InitStd);
        var prompt = TestModels.RandomPrompt(256, 1500, 9); // past the first table (1,024 positions)
        using var cache = new KvCache(config, 1600, model.DType, model.Device);
        var first = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 20 }, out _);

        // The same weights in a model whose tables were grown by one long pass at once.
        using var other = new Transformer(config);
        using (var _ = TorchSharp.torch.no_grad())
            foreach (var (name, p) in other.named_parameters()) p.copy_(model.get_parameter(name)!);
        using var cache2 = new KvCache(config, 1600, other.DType, other.Device);
        var prefix = prompt.Take(1100).ToArray();
        TestModels.Generate(other, cache2, prefix, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 1 }, out _);
        var second = TestModels.Generate(other, cache2, prompt, new GenerationOptions { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 20 }, out _);
        Assert.Equal(first, second);
    }
}
