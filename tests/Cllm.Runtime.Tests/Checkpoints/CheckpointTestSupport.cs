using Cllm.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Checkpoints;

internal static class TensorAssert
{
    /// <summary>Same dtype, same shape, same bytes (bit-exact, NaN payloads included).</summary>
    public static void BitEqual(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.dtype == actual.dtype, $"{name}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{name}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        using var scope = NewDisposeScope();
        var a = expected.cpu().contiguous();
        var b = actual.cpu().contiguous();
        Assert.True(a.bytes.SequenceEqual(b.bytes), $"{name}: bytes differ");
    }

    /// <summary>Tensors created on this thread and not yet disposed.</summary>
    public static long LiveTensors()
    {
        TorchNative.EnsureLoaded();
        return DisposeScopeManager.Statistics.ThreadTotalLiveCount;
    }
}
