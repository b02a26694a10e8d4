using System.Diagnostics;
using Cllm.Native;
using TorchSharp;
using Xunit;

namespace Cllm.Tests;

public sealed class NativeLoadingTests
{
    [Fact]
    public void TorchSharpLoadsAndComputes()
    {
        TorchNative.EnsureLoaded();
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Assert.Equal(new float[] { 5, 14, 14, 50 }, b.data<float>().ToArray());
    }

    [Fact]
    public void LibtorchsOpenMpThreadsSpinBrieflyUnlessTheUserChose()
    {
        TorchNative.EnsureLoaded();
        // The process environment as libgomp read it (the managed copy does not see setenv).
        var seen = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(GetEnvironment("GOMP_SPINCOUNT"));
        var userSpin = Environment.GetEnvironmentVariable("GOMP_SPINCOUNT");
        var userPolicy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        if (userSpin is not null) Assert.Equal(userSpin, seen);
        else if (userPolicy is not null) Assert.Null(seen);
        else Assert.Equal(TorchNative.OpenMpSpinCount, seen);
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "getenv")]
    static extern nint GetEnvironment(string name);

    [Fact]
    public void MarkVersionWeakFlipsOnlyTheFlagOfThatVersion()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), path);
        var original = File.ReadAllBytes(path);
        var patched = (byte[])original.Clone();

        Assert.True(TorchNative.MarkVersionWeak(patched, "GLIBCXX_3.4.32"));
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.Single(changed); // the low byte of one vna_flags field

        Assert.False(TorchNative.MarkVersionWeak((byte[])original.Clone(), "GLIBCXX_99.0"));
        Assert.False(TorchNative.MarkVersionWeak(new byte[100], "GLIBCXX_3.4.32"));

        // binutils' own reading of the patched file agrees: that one version, and only it, is weak.
        var copy = Path.Combine(Path.GetTempPath(), $"cllm-weak-{Environment.ProcessId}.so");
        File.WriteAllBytes(copy, patched);
        try
        {
            var readelf = Process.Start(new ProcessStartInfo("readelf", ["-V", copy]) { RedirectStandardOutput = true })!;
            var text = readelf.StandardOutput.ReadToEnd();
            readelf.WaitForExit();
            var weak = text.Split('\n').Where(l => l.Contains("Flags: WEAK")).ToArray();
            Assert.Single(weak);
            Assert.Contains("GLIBCXX_3.4.32", weak[0]);
        }
        finally
        {
            File.Delete(copy);
        }
    }
}
