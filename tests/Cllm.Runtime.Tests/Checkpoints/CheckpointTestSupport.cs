using Cllm.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Checkpoints;

/// <summary>A fresh folder under the system temp folder, removed on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cllm-checkpoints-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

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
