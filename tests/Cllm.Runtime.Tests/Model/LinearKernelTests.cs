using Cllm.Model;
using Cllm.Native;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>The CPU matmul kernel against libtorch's F.linear, and the property Jacobi's exactness rests on: a row's
/// result does not depend on how many rows share the pass.</summary>
public sealed class LinearKernelTests
{
    static LinearKernelTests() => TorchNative.EnsureLoaded();

    [Theory]
    [InlineData(ScalarType.Float32, 1e-5)]
    [InlineData(ScalarType.BFloat16, 2e-2)]
    public void MatchesLibtorchForEveryRowCountAndShape(ScalarType dtype, double tolerance)
    {
        // Without AVX-512 the kernel never runs and Linear is F.linear: checked below as Handles == false.
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var generator = new TorchSharp.torch.Generator(7);
        foreach (var (outFeatures, inFeatures, bias) in new[] { (37, 64, false), (200, 96, true), (8, 16, false), (1031, 48, true) })
            foreach (var rows in new[] { 1, 2, 3, 4, 5, 8, 16, 17, 64 })
            {
                var w = randn(outFeatures, inFeatures, generator: generator).to(dtype);
                var b = bias ? randn(outFeatures, generator: generator).to(dtype) : null;
                var x = randn(1, rows, inFeatures, generator: generator).to(dtype);
                var handled = LinearKernel.Handles(x, w, b);
                // float32 always runs here; bfloat16 only for one- and two-row passes (libtorch is faster beyond).
                Assert.Equal(LinearKernel.Supported && (dtype == ScalarType.Float32 || rows <= 2), handled);
                var expected = nn.functional.linear(x.to(float32), w.to(float32), b?.to(float32));
                var actual = LinearKernel.Linear(x, w, b);
                Assert.Equal(dtype, actual.dtype);
                Assert.Equal(new long[] { 1, rows, outFeatures }, actual.shape);
                var error = (actual.to(float32) - expected).abs().max().item<float>();
                var scale = expected.abs().max().item<float>();
                Assert.True(error <= tolerance * Math.Max(1, scale), $"{dtype} {outFeatures}x{inFeatures} rows {rows}: max error {error} (scale {scale})");
            }
    }

    [Fact]
    public void ARowGivesTheSameBitsAloneAndInAPassOfManyRows()
    {
        if (!LinearKernel.Supported)
        {
            // No AVX-512 here: the kernel must stay out of the way (libtorch everywhere).
            Assert.False(LinearKernel.Handles(zeros(1, 16), zeros(4, 16), null));
            return;
        }
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var generator = new TorchSharp.torch.Generator(11);
        var w = randn(203, 128, generator: generator);
        var b = randn(203, generator: generator);
        var x = randn(1, 37, 128, generator: generator);
        var together = LinearKernel.Forward(x, w, b);
        for (var r = 0; r < 37; r++)
        {
            var alone = LinearKernel.Forward(x.narrow(1, r, 1).contiguous(), w, b);
            Assert.True(alone[0, 0].equal(together[0, r]).all().item<bool>(), $"row {r} differs between a 1-row and a 37-row pass");
        }
        // And over every split of the rows into two passes (the tiles of 4 and the leftovers differ).
        for (var split = 1; split < 37; split++)
        {
            var first = LinearKernel.Forward(x.narrow(1, 0, split).contiguous(), w, b);
            var second = LinearKernel.Forward(x.narrow(1, split, 37 - split).contiguous(), w, b);
            Assert.True(cat([first, second], 1).equal(together).all().item<bool>(), $"split at {split} changes bits");
        }
    }

    [Fact]
    public void TrainingStillGetsGradientsThroughLibtorch()
    {
        using var scope = NewDisposeScope();
        var w = randn(16, 32).requires_grad_();
        var x = randn(2, 32);
        Assert.False(LinearKernel.Handles(x, w, null)); // grad mode: autograd needs libtorch's op
        LinearKernel.Linear(x, w).sum().backward();
        Assert.NotNull(w.grad);
        Assert.True(w.grad!.abs().sum().item<float>() > 0);
    }
}
