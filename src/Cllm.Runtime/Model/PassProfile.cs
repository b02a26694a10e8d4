using System.Diagnostics;

namespace Cllm.Model;

/// <summary>
/// Where a forward pass's time goes, by the <see cref="Kernels"/> seam's operations: off unless a benchmark turns it
/// on (then each operation costs two timestamp reads). Process-wide and not thread-safe: for one pass at a time.
/// </summary>
static class PassProfile
{
    public const int Linear = 0, Attention = 1, Norm = 2, Rope = 3, SwiGlu = 4;

    /// <summary>The operation names, by index.</summary>
    public static readonly string[] Names = ["linear", "attention", "norm", "rope", "swiglu"];

    static readonly long[] s_ticks = new long[Names.Length];

    public static bool Enabled { get; set; }

    public static long Begin() => Enabled ? Stopwatch.GetTimestamp() : 0;

    public static void End(int operation, long began)
    {
        if (began != 0) s_ticks[operation] += Stopwatch.GetTimestamp() - began;
    }

    /// <summary>Milliseconds spent in each operation since the last <see cref="Reset"/>.</summary>
    public static double[] Milliseconds() => [.. s_ticks.Select(t => t * 1000.0 / Stopwatch.Frequency)];

    public static void Reset() => Array.Clear(s_ticks);
}
