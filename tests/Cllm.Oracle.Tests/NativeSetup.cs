using System.Runtime.CompilerServices;
using Cllm.Native;

namespace Cllm.Oracle.Tests;

static class NativeSetup
{
    // TorchSharp's natives are loaded through TorchNative (which patches them for this machine's libstdc++) before any
    // test runs: a test that touches torch first would fail to load them and fail every later test in its process.
#pragma warning disable CA2255 // a test assembly is the application here
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void LoadTorch() => TorchNative.EnsureLoaded();
}
