using System.Diagnostics.CodeAnalysis;

namespace Cllm.Oracle.Tests;

/// <summary>
/// What a test needs and cannot make itself (a trained model folder): absent, the test is reported as skipped,
/// never as passed; under CI (CLLM_CI=1, set by .ci/run) absence fails the test, since CI must run it.
/// </summary>
static class Prerequisite
{
    public static bool InCi => Environment.GetEnvironmentVariable("CLLM_CI") == "1";

    public static void Require([DoesNotReturnIf(false)] bool present, string missing)
    {
        if (present) return;
        if (InCi) Assert.Fail($"{missing}; CI (CLLM_CI=1) must run this test, so its absence is a failure.");
        Assert.Skip(missing);
    }
}
