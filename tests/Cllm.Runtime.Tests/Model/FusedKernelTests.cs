using Cllm.Model;
using Cllm.Native;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>The fused RMSNorm, RoPE and SwiGLU kernels against the same formulas written with libtorch ops.</summary>
public sealed class FusedKernelTests
{
    static FusedKernelTests() => TorchNative.EnsureLoaded();

    [Theory]
    [InlineData(ScalarType.Float32, 1e-5)]
    [InlineData(ScalarType.BFloat16, 1e-2)]
    public void RmsNormMatchesTheFormula(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var generator = new TorchSharp.torch.Generator(3);
        var x = (randn(2, 5, 96, generator: generator) * 3).to(dtype);
        var w = (rand(96, generator: generator) + 0.5).to(dtype);
        var input = x.to(float32);
        var normed = input * rsqrt(input.pow(2).mean([-1L], keepdim: true) + 1e-5);
        var expected = (w.to(float32) * normed.to(dtype).to(float32)).to(dtype).to(float32);
        var actual = Kernels.RmsNorm(x, w, 1e-5).to(float32);
        Assert.True((actual - expected).abs().max().item<float>() <= tolerance * expected.abs().max().item<float>());
    }

    [Theory]
    [InlineData(ScalarType.Float32, 1e-6)]
    [InlineData(ScalarType.BFloat16, 2e-2)]
    public void RotateHeadsMatchesRotateHalfAndLeavesTheOtherHeads(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var generator = new TorchSharp.torch.Generator(5);
        int t = 7, heads = 5, rotated = 3, d = 16;
        var x = randn(1, t, heads, d, generator: generator).to(dtype);
        var angles = rand(t, 1, d / 2, generator: generator) * 6;
        var cos = cat([angles.cos(), angles.cos()], -1).to(dtype);
        var sin = cat([angles.sin(), angles.sin()], -1).to(dtype);
        var original = x.clone();
        var q = original.narrow(2, 0, rotated).to(float32);
        var half = cat([q.narrow(-1, d / 2, d / 2).neg(), q.narrow(-1, 0, d / 2)], -1);
        var expected = q * cos.to(float32) + half * sin.to(float32);
        var actual = Kernels.RotateHeads(x, rotated, cos, sin).to(float32);
        Assert.True((actual - expected).abs().max().item<float>() <= tolerance * 4);
        // The heads after the rotated ones (the values) are untouched.
        Assert.True(x.narrow(2, rotated, heads - rotated).equal(original.narrow(2, rotated, heads - rotated)).all().item<bool>());
    }

    [Fact]
    public void SwiGluMatchesSiluTimesUp()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var generator = new TorchSharp.torch.Generator(9);
        var gateUp = randn(1, 3, 2 * 40, generator: generator) * 4; // 40: a vector part and a scalar tail
        var expected = nn.functional.silu(gateUp.narrow(-1, 0, 40)) * gateUp.narrow(-1, 40, 40);
        var actual = Kernels.SwiGlu(gateUp, 40);
        Assert.True((actual - expected).abs().max().item<float>() <= 1e-5 * expected.abs().max().item<float>());
    }
}
