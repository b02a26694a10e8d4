using System.Buffers.Binary;
using System.Text;

namespace Cllm.Checkpoints;

/// <summary>Tensor element types this writer emits (ggml's type ids).</summary>
public enum GgufTensorType : uint
{
    F32 = 0,
    F16 = 1,
    BF16 = 30,
}

/// <summary>
/// Writes a GGUF v3 file: little-endian header ("GGUF", version, tensor count, metadata count), typed
/// metadata key/values, tensor infos (name, dimensions innermost first, type, offset into the data section),
/// then the tensor data, each tensor aligned to <see cref="Alignment"/>. Tensor bytes are produced on
/// demand while writing, so a model is never held twice in memory.
/// </summary>
public sealed class GgufWriter
{
    public const uint Version = 3;

    /// <summary>Data alignment; written as <c>general.alignment</c>.</summary>
    public const int Alignment = 32;

    enum ValueType : uint
    {
        UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8,
        Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
    }

    readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    readonly List<TensorEntry> _tensors = [];

    sealed record TensorEntry(string Name, long[] Shape, GgufTensorType Type, long ByteCount, Func<byte[]> Data);

    public GgufWriter()
    {
        Add("general.alignment", (uint)Alignment);
    }

    /// <summary>Metadata keys in the order they will be written.</summary>
    public IEnumerable<string> Keys => _metadata.Select(m => m.Key);

    /// <summary>Tensor names in the order they will be written.</summary>
    public IEnumerable<string> TensorNames => _tensors.Select(t => t.Name);

    public void Add(string key, uint value) => AddValue(key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); });

    public void Add(string key, int value) => AddValue(key, w => { w.Write((uint)ValueType.Int32); w.Write(value); });

    public void Add(string key, float value) => AddValue(key, w => { w.Write((uint)ValueType.Float32); w.Write(value); });

    public void Add(string key, bool value) => AddValue(key, w => { w.Write((uint)ValueType.Bool); w.Write((byte)(value ? 1 : 0)); });

    public void Add(string key, string value) => AddValue(key, w => { w.Write((uint)ValueType.String); WriteString(w, value); });

    public void Add(string key, IReadOnlyList<string> values) => AddValue(key, w =>
    {
        WriteArrayHeader(w, ValueType.String, values.Count);
        foreach (var v in values) WriteString(w, v);
    });

    public void Add(string key, IReadOnlyList<float> values) => AddValue(key, w =>
    {
        WriteArrayHeader(w, ValueType.Float32, values.Count);
        foreach (var v in values) w.Write(v);
    });

    public void Add(string key, IReadOnlyList<int> values) => AddValue(key, w =>
    {
        WriteArrayHeader(w, ValueType.Int32, values.Count);
        foreach (var v in values) w.Write(v);
    });

    /// <summary>
    /// Adds a tensor. <paramref name="shape"/> is in PyTorch order (outermost first); GGUF stores it reversed.
    /// <paramref name="data"/> is called once while writing and must return exactly the row-major bytes.
    /// </summary>
    public void AddTensor(string name, long[] shape, GgufTensorType type, Func<byte[]> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) >= 64)
            throw new ArgumentException($"GGUF tensor name '{name}' is too long (llama.cpp allows at most 63 bytes).", nameof(name));
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"Tensor '{name}' was added twice.", nameof(name));
        if (shape.Length is < 1 or > 4 || shape.Any(d => d <= 0))
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape)}] must have 1 to 4 positive dimensions.", nameof(shape));
        var elements = shape.Aggregate(1L, (a, b) => a * b);
        _tensors.Add(new TensorEntry(name, shape, type, elements * ElementSize(type), data));
    }

    public static int ElementSize(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 => 4,
        GgufTensorType.F16 or GgufTensorType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported GGUF tensor type."),
    };

    /// <summary>Writes the file (to a temporary name first, then renamed, so a failed export leaves no partial file).</summary>
    public void Write(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                Write(stream);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            if (File.Exists(temp)) File.Delete(temp);
            throw;
        }
    }

    /// <summary>Writes the file to <paramref name="stream"/>.</summary>
    public void Write(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("The GGUF writer needs a little-endian machine.");
        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, write) in _metadata)
        {
            WriteString(w, key);
            write(w);
        }

        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Shape.Length);
            for (var i = t.Shape.Length - 1; i >= 0; i--) w.Write((ulong)t.Shape[i]);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset = Align(offset + t.ByteCount);
        }

        w.Flush();
        Pad(w, stream.Position);
        foreach (var t in _tensors)
        {
            var bytes = t.Data();
            if (bytes.LongLength != t.ByteCount)
                throw new InvalidOperationException($"Tensor '{t.Name}' produced {bytes.LongLength} bytes; its shape and type need {t.ByteCount}.");
            w.Write(bytes);
            Pad(w, t.ByteCount);
        }
        w.Flush();
    }

    static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    static void Pad(BinaryWriter w, long position)
    {
        var padding = (int)(Align(position) - position);
        if (padding > 0) w.Write(new byte[padding]);
    }

    void AddValue(string key, Action<BinaryWriter> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (!_keys.Add(key)) throw new ArgumentException($"GGUF metadata key '{key}' was added twice.", nameof(key));
        _metadata.Add((key, write));
    }

    static void WriteArrayHeader(BinaryWriter w, ValueType element, int count)
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)element);
        w.Write((ulong)count);
    }

    static void WriteString(BinaryWriter w, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    /// <summary>Reads the header and metadata keys of a GGUF file (no values): a sanity check for tests and tools.</summary>
    public static (uint Version, ulong Tensors, ulong Metadata) ReadHeader(string path)
    {
        Span<byte> header = stackalloc byte[24];
        using var f = File.OpenRead(path);
        f.ReadExactly(header);
        if (!header[..4].SequenceEqual("GGUF"u8)) throw new InvalidDataException($"'{path}' is not a GGUF file (no \"GGUF\" magic).");
        return (BinaryPrimitives.ReadUInt32LittleEndian(header[4..]), BinaryPrimitives.ReadUInt64LittleEndian(header[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(header[16..]));
    }
}
