using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Cllm.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Checkpoints;

/// <summary>One tensor's entry in a safetensors header. <see cref="Begin"/> and <see cref="End"/> are
/// byte offsets into the data buffer that follows the header (not into the file).</summary>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Bytes the tensor occupies in the file.</summary>
    public long ByteLength => End - Begin;
}

/// <summary>
/// Reads and writes the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}</c>), then the tensors' bytes.
/// Malformed files are refused with an <see cref="InvalidDataException"/> naming the file and tensor.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest header accepted (as in the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";
    const int HeaderAlignment = 8;
    // Tensors are copied in pieces of at most this many bytes (Span<byte> is limited to 2 GiB).
    const int ChunkBytes = 1 << 30;
    const int ReadPieceBytes = 16 << 20;

    /// <summary>Loads every tensor of a safetensors file onto the CPU (or <paramref name="device"/>).</summary>
    /// <param name="path">The .safetensors file.</param>
    /// <param name="convertTo">If given, floating-point tensors are converted to this dtype; integer and bool
    /// tensors (token ids, masks, quantised blocks) keep their own dtype.</param>
    /// <param name="device">If given, tensors are moved there.</param>
    /// <returns>A new dictionary (ordinal keys) of tensors the caller owns. Tensors join the caller's
    /// dispose scope, if there is one.</returns>
    public static Dictionary<string, Tensor> Read(string path, ScalarType? convertTo = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        TorchNative.EnsureLoaded();
        using var stream = OpenRead(path);
        var header = ParseHeader(stream, path);

        // Refuse before allocating anything.
        foreach (var info in header.Tensors)
        {
            SafeTensorsDType.TryGet(info.DType, out var entry);
            if (entry.ScalarType is null)
                throw Invalid(path,
                    $"tensor '{info.Name}' has dtype {info.DType}, a safetensors dtype that TorchSharp 0.107 has no tensor type for " +
                    $"(loadable: {SafeTensorsDType.Loadable})");
        }

        var result = new Dictionary<string, Tensor>(header.Tensors.Count, StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        foreach (var info in header.Tensors) // in offset order: the file is read front to back
        {
            SafeTensorsDType.TryGet(info.DType, out var entry);
            var tensor = empty(info.Shape, entry.ScalarType!.Value);
            stream.Position = header.DataStart + info.Begin;
            try
            {
                ReadInto(stream, tensor, info.ByteLength);
            }
            catch (EndOfStreamException e)
            {
                throw Invalid(path, $"the file ended while reading tensor '{info.Name}' (the file shrank while it was being read?)", e);
            }
            result.Add(info.Name, Place(tensor, convertTo, device));
        }
        scope.MoveToOuter(result.Values);
        return result;
    }

    /// <summary>
    /// Reads the tensors of <paramref name="path"/> for which <paramref name="destination"/> returns a tensor straight
    /// into that tensor: with the same dtype on the CPU, the file's bytes land in its memory with no copy in
    /// between (a model loads in its own memory only); otherwise through one temporary of the tensor's size.
    /// Returns the names of every tensor in the file.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is malformed, a shape differs from the destination's, or
    /// an integer tensor would fill a floating-point destination.</exception>
    public static IReadOnlyList<string> ReadInto(string path, Func<string, Tensor?> destination)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(destination);
        TorchNative.EnsureLoaded();
        using var stream = OpenRead(path);
        var header = ParseHeader(stream, path);
        var targets = new List<(TensorInfo Info, SafeTensorsDType.Entry DType, Tensor Target)>();
        foreach (var info in header.Tensors) // refuse before reading anything
        {
            if (destination(info.Name) is not { } target) continue;
            SafeTensorsDType.TryGet(info.DType, out var entry);
            if (entry.ScalarType is not { } type)
                throw Invalid(path, $"tensor '{info.Name}' has dtype {info.DType}, which TorchSharp 0.107 cannot load (loadable: {SafeTensorsDType.Loadable})");
            if (!info.Shape.SequenceEqual(target.shape))
                throw Invalid(path, $"tensor '{info.Name}' has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", target.shape)}] " +
                    "for this config.json; check that config.json matches the weights");
            if (target.is_floating_point() && !is_floating_point(type))
                throw Invalid(path, $"tensor '{info.Name}' is stored as {info.DType} (integers, e.g. quantised or corrupt); model " +
                    "weights must be F32, F16 or BF16. Use an unquantised checkpoint, or dequantise it before loading");
            targets.Add((info, entry, target));
        }
        // Tensors of the destination's dtype in CPU memory are read in place, in pieces spread over the cores: a fresh
        // tensor's pages are faulted in as the bytes land, and two readers halved a 1 GB model's read time here.
        bool Direct(Tensor target, SafeTensorsDType.Entry entry) =>
            entry.ScalarType == target.dtype && target.device_type == DeviceType.CPU && target.is_contiguous();
        var pieces = new List<(nint Memory, long FileOffset, int Length, string Name)>();
        foreach (var (info, entry, target) in targets.Where(x => Direct(x.Target, x.DType)))
        {
            var memory = info.ByteLength == 0 ? 0 : Model.LinearKernel.Pointer(target);
            for (long at = 0; at < info.ByteLength; at += ReadPieceBytes)
                pieces.Add((memory + (nint)at, header.DataStart + info.Begin + at,
                    (int)Math.Min(ReadPieceBytes, info.ByteLength - at), info.Name));
        }
        try
        {
            Parallel.ForEach(pieces, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(4, Environment.ProcessorCount) }, piece =>
            {
                unsafe
                {
                    var bytes = new Span<byte>((byte*)piece.Memory, piece.Length);
                    for (var done = 0; done < bytes.Length;)
                    {
                        var read = RandomAccess.Read(stream.SafeFileHandle, bytes[done..], piece.FileOffset + done);
                        if (read == 0)
                            throw Invalid(path, $"the file ended while reading tensor '{piece.Name}' (the file shrank while it was being read?)");
                        done += read;
                    }
                }
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        foreach (var (info, entry, target) in targets.Where(x => !Direct(x.Target, x.DType)))
        {
            stream.Position = header.DataStart + info.Begin;
            try
            {
                using var temporary = empty(info.Shape, entry.ScalarType!.Value);
                ReadInto(stream, temporary, info.ByteLength);
                using var _ = no_grad();
                target.copy_(temporary);
            }
            catch (EndOfStreamException e)
            {
                throw Invalid(path, $"the file ended while reading tensor '{info.Name}' (the file shrank while it was being read?)", e);
            }
        }
        return header.Tensors.Select(t => t.Name).ToList();
    }

    /// <summary>Reads and checks a file's header without loading tensors. The entries come in data order.</summary>
    public static IReadOnlyDictionary<string, TensorInfo> ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        var header = ParseHeader(stream, path);
        var result = new Dictionary<string, TensorInfo>(header.Tensors.Count, StringComparer.Ordinal);
        foreach (var info in header.Tensors) result.Add(info.Name, info);
        return result;
    }

    /// <summary>The <c>__metadata__</c> string map of a file's header (empty if it has none).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = OpenRead(path);
        return ParseHeader(stream, path).Metadata;
    }

    /// <summary>
    /// Writes tensors (each in its own dtype, copied to the CPU and made contiguous as needed) to a
    /// safetensors file. The file is written under a temporary name in the same folder and then moved over
    /// <paramref name="path"/>, so readers never see a half-written file.
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        TorchNative.EnsureLoaded();

        var entries = Describe(tensors);

        // Data order: widest elements first, then by name, so every tensor starts at a multiple of its
        // element size (as the reference writer does); the header lists names in sorted order.
        var layout = entries.OrderByDescending(e => e.DType.ElementSize).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
        var offsets = new Dictionary<string, (long Begin, long End)>(StringComparer.Ordinal);
        long position = 0;
        foreach (var e in layout)
        {
            offsets[e.Name] = (position, position + e.Bytes);
            position += e.Bytes;
        }

        var headerBytes = BuildHeader(entries.OrderBy(e => e.Name, StringComparer.Ordinal)
            .Select(e => (e.Name, e.DType.Name, e.Shape, offsets[e.Name].Begin, offsets[e.Name].End)), metadata);

        var fullPath = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                stream.SetLength(8 + headerBytes.Length + position);
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)headerBytes.Length);
                stream.Write(prefix);
                stream.Write(headerBytes);
                foreach (var e in layout)
                {
                    using var scope = NewDisposeScope(); // frees CPU copies of device / strided tensors at once
                    var cpu = e.Tensor.detach();
                    if (cpu.device_type != DeviceType.CPU) cpu = cpu.cpu();
                    if (!cpu.is_contiguous()) cpu = cpu.contiguous();
                    WriteFrom(stream, cpu, e.Bytes);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Checks names and dtypes before anything is written.</summary>
    internal static List<(string Name, Tensor Tensor, SafeTensorsDType.Entry DType, long[] Shape, long Bytes)> Describe(
        IReadOnlyDictionary<string, Tensor> tensors)
    {
        var entries = new List<(string Name, Tensor Tensor, SafeTensorsDType.Entry DType, long[] Shape, long Bytes)>(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            if (name is null) throw new ArgumentException("A tensor name is null.", nameof(tensors));
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved and can't name a tensor.", nameof(tensors));
            if (tensor is null) throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            if (!SafeTensorsDType.TryGet(tensor.dtype, out var dtype))
                throw new ArgumentException($"Tensor '{name}' has dtype {tensor.dtype}, which safetensors can't store (supported: {SafeTensorsDType.Loadable}).", nameof(tensors));
            var shape = tensor.shape;
            entries.Add((name, tensor, dtype, shape, checked(ElementCount(shape) * dtype.ElementSize)));
        }
        return entries;
    }

    static Tensor Place(Tensor tensor, ScalarType? convertTo, Device? device)
    {
        var targetType = convertTo is { } c && c != tensor.dtype && tensor.is_floating_point() ? c : tensor.dtype;
        var move = device is not null && (device.type != tensor.device_type || device.index != tensor.device_index);
        if (targetType == tensor.dtype && !move) return tensor;
        var placed = tensor.to(targetType, move ? device! : tensor.device);
        tensor.Dispose(); // don't keep both copies alive until the end of the load
        return placed;
    }

    static void ReadInto(Stream stream, Tensor tensor, long byteLength) =>
        InChunks(tensor, byteLength, bytes => stream.ReadExactly(bytes));

    static void WriteFrom(Stream stream, Tensor tensor, long byteLength) =>
        InChunks(tensor, byteLength, bytes => stream.Write(bytes));

    delegate void BytesAction(Span<byte> bytes);

    /// <summary>Hands the tensor's bytes to <paramref name="action"/> in pieces of at most ChunkBytes:
    /// a Span can't cover more than 2 GiB.</summary>
    static void InChunks(Tensor tensor, long byteLength, BytesAction action)
    {
        if (byteLength == 0) return;
        if (byteLength <= ChunkBytes)
        {
            action(tensor.bytes);
            return;
        }
        using var flat = tensor.view(-1);
        var perChunk = ChunkBytes / tensor.element_size();
        var count = flat.shape[0];
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, count - start));
            action(part.bytes);
        }
    }

    static byte[] BuildHeader(IEnumerable<(string Name, string DType, long[] Shape, long Begin, long End)> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    json.WriteString(key, value ?? throw new ArgumentException($"Metadata value '{key}' is null.", nameof(metadata)));
                json.WriteEndObject();
            }
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType);
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(t.Begin);
                json.WriteNumberValue(t.End);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data buffer starts 8-byte aligned in the file, as the reference writer does.
        var padded = (buffer.Length + HeaderAlignment - 1) / HeaderAlignment * HeaderAlignment;
        while (buffer.Length < padded) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    sealed record Header(long DataStart, List<TensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata);

    static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);

    static Header ParseHeader(FileStream stream, string path)
    {
        var fileLength = stream.Length;
        if (fileLength < 8)
            throw Invalid(path, $"the file is {fileLength} bytes long; a safetensors file starts with an 8-byte header length");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var declared = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (declared > (ulong)(fileLength - 8))
            throw Invalid(path,
                $"the header length field says {declared} bytes, but only {fileLength - 8} bytes follow the 8-byte length " +
                $"(the file is {fileLength} bytes): it is truncated or not a safetensors file");
        if (declared > MaxHeaderBytes)
            throw Invalid(path, $"the header length field says {declared} bytes, more than the {MaxHeaderBytes} bytes allowed");
        if (declared == 0)
            throw Invalid(path, "the header is empty (length 0); expected a JSON object");
        var headerLength = (long)declared;
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON: {e.Message}", e);
        }

        var tensors = new List<TensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"the header JSON is a {document.RootElement.ValueKind}, not an object");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Invalid(path, $"the header has two entries named '{property.Name}'");
                if (property.Name == MetadataKey)
                    ParseMetadata(path, property.Value, metadata);
                else
                    tensors.Add(ParseTensor(path, property.Name, property.Value));
            }
        }

        var dataStart = 8 + headerLength;
        var dataLength = fileLength - dataStart;
        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        var dataEnd = tensors.Count == 0 ? 0 : tensors.Max(t => t.End);
        long expected = 0;
        TensorInfo? previous = null;
        foreach (var t in tensors)
        {
            if (t.Begin < expected)
                throw Invalid(path,
                    $"tensor '{t.Name}' (data_offsets [{t.Begin}, {t.End}]) overlaps tensor '{previous!.Name}' " +
                    $"(data_offsets [{previous.Begin}, {previous.End}])");
            if (t.Begin > expected)
                throw Invalid(path,
                    $"tensor '{t.Name}' starts at data offset {t.Begin}, but " +
                    (previous is null ? "the first tensor must start at 0" : $"the previous tensor '{previous.Name}' ends at {expected}") +
                    "; safetensors data must be contiguous");
            if (t.End > dataLength)
                throw Invalid(path,
                    $"the file is truncated: tensor '{t.Name}' needs {t.ByteLength} bytes at data offsets [{t.Begin}, {t.End}], " +
                    $"but only {Math.Max(0, dataLength - t.Begin)} of them are present (the data buffer holds {dataLength} bytes; " +
                    $"the file is {fileLength} bytes, expected {dataStart + dataEnd})");
            expected = t.End;
            previous = t;
        }
        if (expected < dataLength)
            throw Invalid(path,
                $"the file has {dataLength - expected} bytes after the last tensor's data (the file is {fileLength} bytes, expected {dataStart + expected})");
        return new Header(dataStart, tensors, metadata);
    }

    static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"the '{MetadataKey}' entry is a {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"'{MetadataKey}' entry '{item.Name}' is a {item.Value.ValueKind}; metadata values must be strings");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    static TensorInfo ParseTensor(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"tensor '{name}' has a header entry that is a {value.ValueKind}, not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Invalid(path, $"tensor '{name}' has no \"dtype\" string");
        var dtype = dtypeElement.GetString()!;
        if (!SafeTensorsDType.TryGet(dtype, out var entry))
            throw Invalid(path, $"tensor '{name}' has unsupported dtype '{dtype}' (loadable: {SafeTensorsDType.Loadable})");
        var shape = ReadIntegers(path, name, value, "shape", length: null);
        var offsets = ReadIntegers(path, name, value, "data_offsets", length: 2);
        var (begin, end) = (offsets[0], offsets[1]);
        if (end < begin)
            throw Invalid(path, $"tensor '{name}' has data_offsets [{begin}, {end}] that end before they begin");
        long bytes;
        try
        {
            bytes = checked(ElementCount(shape) * entry.ElementSize);
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"tensor '{name}' has shape [{string.Join(", ", shape)}], too large to address");
        }
        if (bytes != end - begin)
            throw Invalid(path,
                $"tensor '{name}' has shape [{string.Join(", ", shape)}] and dtype {dtype}, which need {bytes} bytes, " +
                $"but its data_offsets [{begin}, {end}] span {end - begin} bytes");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    static long[] ReadIntegers(string path, string name, JsonElement value, string field, int? length)
    {
        if (!value.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Invalid(path, $"tensor '{name}' has no \"{field}\" array");
        var count = array.GetArrayLength();
        if (length is { } expected && count != expected)
            throw Invalid(path, $"tensor '{name}' has a \"{field}\" array of {count} numbers; expected {expected}");
        var result = new long[count];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var number) || number < 0)
                throw Invalid(path, $"tensor '{name}' has \"{field}\" entry {item.GetRawText()}; expected a non-negative integer");
            result[i++] = number;
        }
        return result;
    }

    static long ElementCount(long[] shape)
    {
        long count = 1;
        foreach (var d in shape) count = checked(count * d);
        return count;
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    static InvalidDataException Invalid(string path, string message, Exception? inner = null) =>
        new($"Invalid safetensors file '{path}': {message}.", inner);
}
