using Cllm.Model;

namespace Cllm.Tests.Model;

/// <summary>Phi-3-style longrope for test shapes (shared with the oracle tests): short factors near 1, long factors
/// growing with the wavelength, Hugging Face's attention factor.</summary>
static class LongRopeScaling
{
    public static RopeScaling Create(int headDim, int original, int max) => new("longrope", (double)max / original,
        OriginalMaxPositions: original,
        ShortFactor: [.. Enumerable.Range(0, headDim / 2).Select(j => 1 + 0.1 * j)],
        LongFactor: [.. Enumerable.Range(0, headDim / 2).Select(j => 1.0 + j * j)],
        AttentionFactor: Math.Sqrt(1 + Math.Log((double)max / original) / Math.Log(original)));
}
