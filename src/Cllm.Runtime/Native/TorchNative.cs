using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace Cllm.Native;

/// <summary>
/// Makes TorchSharp's native library load on Linux distributions whose libstdc++ is older than the
/// one LibTorchSharp was linked against (Debian 12, Ubuntu 22.04: no GLIBCXX_3.4.32).
/// </summary>
/// <remarks>
/// libLibTorchSharp.so 0.107 asks for GLIBCXX_3.4.32 for a single marker symbol that is never called.
/// When the system loader refuses it for a missing symbol version, we write a copy whose
/// version-needed entry for that version carries VER_FLG_WEAK (glibc then only warns), preload the
/// libtorch libraries it depends on from their own folder, and load the copy by full path; TorchSharp's
/// later by-name loads match it by soname. Nothing outside the user's cache folder is changed.
/// </remarks>
public static class TorchNative
{
    const string LibraryFile = "libLibTorchSharp.so";
    const ushort VerFlagWeak = 0x2;
    const uint ShtGnuVerneed = 0x6ffffffe;
    static readonly Lock Gate = new();
    static volatile bool _ready;

    /// <summary>Loads the TorchSharp natives (patching as described above when needed) and checks
    /// that a tensor can be made. Safe to call many times and from many threads.</summary>
    public static void EnsureLoaded()
    {
        if (_ready) return;
        lock (Gate)
        {
            if (_ready) return;
            if (OperatingSystem.IsLinux())
            {
                ShortenOpenMpSpin();
                PrepareLinux();
            }
            try
            {
                using var probe = torch.zeros(1);
            }
            catch (Exception e) when (e is not TorchNativeException)
            {
                throw new TorchNativeException(
                    $"TorchSharp's native libraries failed to load: {e.Message} " +
                    "Make sure the TorchSharp-cpu package (or TorchSharp-cuda-linux with -p:CllmCuda=true) was restored " +
                    "and its runtimes/<rid>/native files were copied next to the application.", e);
            }
            _ready = true;
        }
    }

    /// <summary>The spin count libtorch's OpenMP threads use after a parallel op (unless the user set one).</summary>
    internal const string OpenMpSpinCount = "10000";

    // libgomp's threads spin about 300,000 times after each parallel libtorch op before they sleep, holding the cores
    // the engine's own kernel threads need for the next product: on 2 cores a float32 pass of the 0.5B shape measured
    // 68 ms (1 token) and 178 ms (16 tokens) with the default spin, 50 and 103 ms with 10,000, and 47 and 100 with
    // none, where libtorch's own multi-row bf16 products lost (16 tokens: 68 ms default, 61 ms at 10,000, 83 ms with
    // no spin). libgomp reads the setting once, when libtorch loads it, so it is set in the process environment first;
    // GOMP_SPINCOUNT or OMP_WAIT_POLICY set by the user win.
    static void ShortenOpenMpSpin()
    {
        if (Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null ||
            Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        try
        {
            _ = SetEnvironment("GOMP_SPINCOUNT", OpenMpSpinCount, 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: the default spin stays (slower, still correct).
        }
    }

    [DllImport("libc.so.6", EntryPoint = "setenv")]
    static extern int SetEnvironment(string name, string value, int overwrite);

    static void PrepareLinux()
    {
        var original = FindLibTorchSharp();
        if (original is null) return; // let TorchSharp search on its own and report what it finds

        var handle = Dl.Open(original, out var error);
        if (handle != IntPtr.Zero) return; // the system loader is happy as it is

        var weakened = new List<string>();
        var bytes = File.ReadAllBytes(original);
        // One missing version is reported per attempt; weaken each in turn (normally just one).
        for (var attempt = 0; attempt < 8; attempt++)
        {
            var missing = MissingVersion(error);
            if (missing is null || !missing.StartsWith("GLIBCXX_", StringComparison.Ordinal))
                throw new TorchNativeException(
                    $"Loading {original} failed: {error}. " +
                    (missing is null
                        ? "A library it needs is missing or unreadable; check that the TorchSharp-cpu/libtorch-cpu packages restored completely."
                        : $"The system lacks the symbol version {missing}; install a newer libstdc++/glibc or use a distribution that has it."));
            if (!MarkVersionWeak(bytes, missing))
                throw new TorchNativeException(
                    $"Loading {original} failed: {error}. Could not find the version entry {missing} to relax in the file; " +
                    "a libstdc++ that provides it (GCC 13 or newer) is required.");
            weakened.Add(missing);

            var patched = WriteCopy(bytes, Path.GetFileName(original));
            PreloadDependencies(Path.GetDirectoryName(original)!);
            handle = Dl.Open(patched, out error);
            if (handle != IntPtr.Zero) return;
        }
        throw new TorchNativeException(
            $"Loading {original} failed even after relaxing {string.Join(", ", weakened)}: {error}");
    }

    static string? FindLibTorchSharp()
    {
        var baseDir = AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(baseDir, "runtimes", "linux-x64", "native", LibraryFile),
            Path.Combine(baseDir, LibraryFile),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    static string? MissingVersion(string error)
    {
        // glibc: "version `GLIBCXX_3.4.32' not found (required by ...)"
        const string marker = "version `";
        var start = error.IndexOf(marker, StringComparison.Ordinal);
        if (start < 0) return null;
        start += marker.Length;
        var end = error.IndexOf('\'', start);
        return end > start ? error[start..end] : null;
    }

    static void PreloadDependencies(string folder)
    {
        // Order matters: each needs the previous ones; they resolve each other through $ORIGIN.
        foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path) && Dl.Open(path, out var error) == IntPtr.Zero)
                throw new TorchNativeException($"Loading {path} failed: {error}");
        }
    }

    static string WriteCopy(byte[] bytes, string fileName)
    {
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var folder = Path.Combine(root, "cllm", "native", hash);
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            folder = Path.Combine(Path.GetTempPath(), "cllm-native-" + hash);
            Directory.CreateDirectory(folder);
        }
        var path = Path.Combine(folder, fileName);
        if (File.Exists(path) && new FileInfo(path).Length == bytes.Length) return path;
        var temp = path + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>Sets VER_FLG_WEAK on the version-needed entry named <paramref name="version"/> in an
    /// ELF64 little-endian shared object. Returns false if there is no such entry.</summary>
    internal static bool MarkVersionWeak(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' ||
            elf[4] != 2 /* 64-bit */ || elf[5] != 1 /* little-endian */)
            return false;
        var span = elf.AsSpan();
        var shoff = (long)U64(span, 0x28);
        int shentsize = U16(span, 0x3A), shnum = U16(span, 0x3C);
        for (var i = 0; i < shnum; i++)
        {
            var sh = span[(int)(shoff + (long)i * shentsize)..];
            if (U32(sh, 4) != ShtGnuVerneed) continue;
            var offset = (int)U64(sh, 0x18);
            var strtab = span[(int)(shoff + (long)U32(sh, 0x28) * shentsize)..];
            var strOffset = (int)U64(strtab, 0x18);
            var need = offset;
            while (true)
            {
                int count = U16(span, need + 2);
                var aux = need + (int)U32(span, need + 8);
                for (var k = 0; k < count; k++)
                {
                    var name = CString(span, strOffset + (int)U32(span, aux + 8));
                    if (name == version)
                    {
                        var flags = (ushort)(U16(span, aux + 4) | VerFlagWeak);
                        BitConverter.TryWriteBytes(span[(aux + 4)..], flags);
                        return true;
                    }
                    aux += (int)U32(span, aux + 12);
                }
                var next = U32(span, need + 12);
                if (next == 0) return false;
                need += (int)next;
            }
        }
        return false;
    }

    static ushort U16(ReadOnlySpan<byte> s, int at) => BitConverter.ToUInt16(s[at..]);
    static uint U32(ReadOnlySpan<byte> s, int at) => BitConverter.ToUInt32(s[at..]);
    static ulong U64(ReadOnlySpan<byte> s, int at) => BitConverter.ToUInt64(s[at..]);
    static string CString(ReadOnlySpan<byte> s, int at) => Encoding.ASCII.GetString(s[at..][..s[at..].IndexOf((byte)0)]);

    static class Dl
    {
        // NativeLibrary.Load's exception carries dlerror()'s text, which names the missing version or file.
        public static IntPtr Open(string path, out string error)
        {
            try
            {
                error = "";
                return NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e)
            {
                error = e.Message;
                return IntPtr.Zero;
            }
        }
    }
}

/// <summary>TorchSharp's native libraries could not be loaded; the message names the library and the fix.</summary>
public sealed class TorchNativeException(string message, Exception? inner = null) : Exception(message, inner);
