using Cllm.Decoding;
using Cllm.Model;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>
/// The KV cache is allocated uninitialised: a pass must read only slots written before it. Fresh memory from the
/// operating system is zero, which would hide a read of an unwritten slot, so here every slot holds NaN first.
/// </summary>
public sealed class KvCacheTests
{
    [Theory]
    [InlineData(DecoderKind.Autoregressive)]
    [InlineData(DecoderKind.Jacobi)]
    [InlineData(DecoderKind.Lookahead)]
    public void NoPassReadsASlotItHasNotWritten(DecoderKind decoder)
    {
        using var model = TestModels.Create("gqa-tied", seed: 4);
        var config = model.Config;
        const int Capacity = 96;
        var prompt = TestModels.RandomPrompt(config.VocabSize, 12, seed: 5);
        var options = new GenerationOptions { Decoder = decoder, MaxNewTokens = 60, BlockSize = 8, NgramSize = 3 };

        using var clean = new KvCache(config, Capacity, model.DType, model.Device);
        var expected = TestModels.Generate(model, clean, prompt, options with { Decoder = DecoderKind.Autoregressive }, out _);

        using var poisoned = new KvCache(config, Capacity, model.DType, model.Device);
        using (var _ = NewDisposeScope())
        {
            var nan = full([1, config.NumKvHeads, Capacity, config.HeadDim], float.NaN, model.DType);
            for (var layer = 0; layer < config.NumLayers; layer++) poisoned.Write(layer, 0, nan, nan);
            poisoned.Advance(Capacity);
            poisoned.Clear();
        }
        Assert.Equal(expected, TestModels.Generate(model, poisoned, prompt, options, out _));
    }
}
