using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Checkpoints;

public sealed class SafeTensorsTests
{
    static readonly Dictionary<ScalarType, int> ElementSizes = new()
    {
        [ScalarType.ComplexFloat32] = 8, [ScalarType.Float64] = 8, [ScalarType.Int64] = 8, [ScalarType.Float32] = 4, [ScalarType.Int32] = 4,
        [ScalarType.Float16] = 2, [ScalarType.BFloat16] = 2, [ScalarType.Int16] = 2,
        [ScalarType.Int8] = 1, [ScalarType.Byte] = 1, [ScalarType.Bool] = 1,
    };

    /// <summary>Every loadable dtype, with scalars, empty dimensions, special values and a strided view.</summary>
    static Dictionary<string, Tensor> Sample() => new(StringComparer.Ordinal)
    {
        ["f32.matrix"] = randn(3, 4),
        ["f32.scalar"] = tensor(3.5f),
        ["f32.special"] = tensor(new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue }),
        ["f32.empty"] = empty([2, 0, 3]),
        ["f16.cube"] = randn(2, 3, 5).to(ScalarType.Float16),
        ["f16.scalar"] = tensor(-1.25f).to(ScalarType.Float16),
        ["bf16.vector"] = randn(7).to(ScalarType.BFloat16),
        ["bf16.transposed"] = randn(4, 6).to(ScalarType.BFloat16).t(),
        ["bf16.empty"] = empty([0], ScalarType.BFloat16),
        ["i64.scalar"] = tensor(long.MinValue),
        ["i64.ids"] = tensor(new[] { 0L, 1, -1, long.MaxValue, long.MinValue, 123_456_789_012 }).reshape(2, 3),
        ["i64.empty"] = empty([3, 0], ScalarType.Int64),
        ["bool.mask"] = tensor(new[] { true, false, true, true, false }),
        ["bool.grid"] = rand(3, 3).gt(0.5),
        ["bool.scalar"] = tensor(true),
        ["bool.empty"] = empty([0, 4], ScalarType.Bool),
        ["f64.values"] = tensor(new[] { Math.PI, -Math.E, double.NaN }),
        ["i32.values"] = tensor(new[] { int.MinValue, 0, int.MaxValue }),
        ["i16.values"] = tensor(new short[] { short.MinValue, 7, short.MaxValue }),
        ["i8.values"] = tensor(new sbyte[] { sbyte.MinValue, -1, sbyte.MaxValue }),
        ["u8.values"] = tensor(new byte[] { 0, 1, 255 }),
        ["c64.values"] = randn(2, 2, dtype: ScalarType.ComplexFloat32),
    };

    [Fact]
    public void RoundTripIsBitExactForEveryDtypeAndShape()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var original = Sample();
        var path = folder.File("sample.safetensors");
        SafeTensors.Write(path, original, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo \"quoted\"" });

        var loaded = SafeTensors.Read(path);
        Assert.Equal(original.Keys.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, expected) in original) TensorAssert.BitEqual(expected, loaded[name], name);
        Assert.Equal(0, loaded["f32.scalar"].dim());
        Assert.Equal(0, loaded["i64.scalar"].dim());
        Assert.Equal(long.MinValue, loaded["i64.scalar"].item<long>());
        Assert.Equal(new long[] { 2, 0, 3 }, loaded["f32.empty"].shape);

        var metadata = SafeTensors.ReadMetadata(path);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal("héllo \"quoted\"", metadata["note"]);
    }

    [Fact]
    public void ReadAndWriteLeaveNoTensorsBehind()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var path = folder.File("leak.safetensors");
        var baseline = TensorAssert.LiveTensors();
        {
            using var scope = NewDisposeScope();
            var original = Sample();
            var afterSample = TensorAssert.LiveTensors();

            SafeTensors.Write(path, original);
            Assert.Equal(afterSample, TensorAssert.LiveTensors());

            var loaded = SafeTensors.Read(path);
            Assert.Equal(afterSample + loaded.Count, TensorAssert.LiveTensors());
            var converted = SafeTensors.Read(path, ScalarType.Float32);
            Assert.Equal(afterSample + loaded.Count + converted.Count, TensorAssert.LiveTensors());

            // A failed read releases what it had allocated.
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..^3]);
            Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
            Assert.Equal(afterSample + loaded.Count + converted.Count, TensorAssert.LiveTensors());
        }
        Assert.Equal(baseline, TensorAssert.LiveTensors());
    }

    [Theory]
    [InlineData(20)] // more bytes than [2, 2] F32 needs: later tensors would be read from the wrong place
    [InlineData(12)] // fewer
    public void ASpanThatDoesNotMatchTheShapeIsRefused(int spanBytes)
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var path = folder.File("span.safetensors");
        var json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0," + spanBytes + "]}}";
        File.WriteAllBytes(path, SafeTensorsFile(json, new byte[spanBytes]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("'w'", error.Message);
        Assert.Contains("need 16 bytes", error.Message);
        Assert.Contains($"span {spanBytes} bytes", error.Message);
    }

    [Fact]
    public void ReadsAFileBuiltByHandFromTheSpec()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var path = folder.File("hand.safetensors");
        // Header names tensors out of data order, and data offsets are relative to the end of the header.
        const string json =
            "{\"__metadata__\":{\"source\":\"hand\"}," +
            "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," +
            "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[20,36]}," +
            "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]}," +
            "\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[36,39]}}";
        var data = new byte[39];
        float[] w = [1.5f, -2f, 3.25f, 1e-3f];
        for (var i = 0; i < 4; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), w[i]);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(16), 0x3F80); // bf16 1.0
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(18), 0xC040); // bf16 -3.0
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(20), 7);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(28), -123_456_789_012);
        data[36] = 1; data[37] = 0; data[38] = 1;
        File.WriteAllBytes(path, SafeTensorsFile(json, data));

        using var scope = NewDisposeScope();
        var loaded = SafeTensors.Read(path);
        Assert.Equal(ScalarType.Float32, loaded["w"].dtype);
        Assert.Equal(new long[] { 2, 2 }, loaded["w"].shape);
        Assert.Equal(w, loaded["w"].data<float>().ToArray());
        Assert.Equal(-2f, loaded["w"][0, 1].item<float>());
        Assert.Equal(3.25f, loaded["w"][1, 0].item<float>());
        Assert.Equal(ScalarType.BFloat16, loaded["h"].dtype);
        Assert.Equal(new[] { 1f, -3f }, loaded["h"].to(ScalarType.Float32).data<float>().ToArray());
        Assert.Equal(new[] { 7L, -123_456_789_012 }, loaded["ids"].data<long>().ToArray());
        Assert.Equal(new[] { true, false, true }, loaded["m"].data<bool>().ToArray());
        Assert.Equal("hand", SafeTensors.ReadMetadata(path)["source"]);

        // convertTo converts floating-point tensors only; ids and masks keep their dtype.
        var converted = SafeTensors.Read(path, ScalarType.Float32);
        Assert.Equal(ScalarType.Float32, converted["h"].dtype);
        Assert.Equal(new[] { 1f, -3f }, converted["h"].data<float>().ToArray());
        Assert.Equal(ScalarType.Int64, converted["ids"].dtype);
        Assert.Equal(ScalarType.Bool, converted["m"].dtype);
        var halved = SafeTensors.Read(path, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, halved["w"].dtype);
        Assert.Equal(new[] { 1.5f, -2f, 3.25f }, halved["w"].to(ScalarType.Float32).flatten()[..3].data<float>().ToArray());

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal(["w", "h", "ids", "m"], header.Keys); // data order
        var h = header["h"];
        Assert.Equal(("h", "BF16", 16L, 20L, 4L), (h.Name, h.DType, h.Begin, h.End, h.ByteLength));
        Assert.Equal(new long[] { 2 }, h.Shape);
    }

    [Fact]
    public void WrittenHeaderFollowsTheSpec()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var original = Sample();
        var path = folder.File("spec.safetensors");
        SafeTensors.Write(path, original, new Dictionary<string, string> { ["format"] = "pt" });

        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.True(8 + headerLength <= bytes.Length);
        Assert.Equal(0, (8 + headerLength) % 8); // data buffer 8-byte aligned, header padded with spaces
        var headerText = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("{", headerText);
        var jsonEnd = headerText.TrimEnd(' ').Length;
        Assert.True(headerText.Length - jsonEnd < 8);

        using var document = JsonDocument.Parse(headerText);
        var root = document.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        var names = root.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__").ToList();
        Assert.Equal(original.Keys.Order(StringComparer.Ordinal), names); // sorted names in the header

        var entries = new List<(string Name, long Begin, long End)>();
        foreach (var property in root.EnumerateObject().Where(p => p.Name != "__metadata__"))
        {
            var t = original[property.Name];
            var dtype = property.Value.GetProperty("dtype").GetString();
            var shape = property.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Assert.Equal(t.shape, shape);
            Assert.Equal(ExpectedDType(t.dtype), dtype);
            Assert.Equal(2, offsets.Length);
            Assert.Equal(t.numel() * ElementSizes[t.dtype], offsets[1] - offsets[0]);
            Assert.Equal(0, offsets[0] % ElementSizes[t.dtype]); // each tensor aligned to its element size
            entries.Add((property.Name, offsets[0], offsets[1]));
        }

        long expected = 0;
        foreach (var (name, begin, end) in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            Assert.True(begin == expected, $"{name} starts at {begin}, expected {expected}");
            expected = end;
        }
        Assert.Equal(bytes.Length - 8 - headerLength, expected); // contiguous, covering the whole data buffer

        // The file's bytes at each tensor's offsets are that tensor's own bytes.
        foreach (var (name, begin, end) in entries)
        {
            var t = original[name].contiguous();
            Assert.True(bytes.AsSpan((int)(8 + headerLength + begin), (int)(end - begin)).SequenceEqual(t.bytes), name);
        }

        var header = SafeTensors.ReadHeader(path);
        Assert.Equal(entries.Count, header.Count);
        foreach (var (name, begin, end) in entries) Assert.Equal((begin, end), (header[name].Begin, header[name].End));
    }

    [Fact]
    public void WriterOutputIsByteForByteTheReferenceLayout()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var path = folder.File("exact.safetensors");

        // The case of the reference implementation's serialization test: a 64-byte header, no padding.
        SafeTensors.Write(path, new Dictionary<string, Tensor> { ["attn.0"] = arange(6, dtype: ScalarType.Float32).reshape(1, 2, 3) });
        var data = new byte[24];
        for (var i = 0; i < 6; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), i);
        var expected = SafeTensorsFile("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", data);
        Assert.Equal(64, (int)BinaryPrimitives.ReadUInt64LittleEndian(expected));
        Assert.Equal(expected, File.ReadAllBytes(path));

        // Metadata first, then tensors; widest dtype first in the data; header padded with spaces to 8 bytes.
        SafeTensors.Write(path,
            new Dictionary<string, Tensor> { ["b"] = tensor(new[] { true, false, true }), ["a"] = tensor(new short[] { 1, -1 }) },
            new Dictionary<string, string> { ["format"] = "pt" });
        const string json = "{\"__metadata__\":{\"format\":\"pt\"}," +
                            "\"a\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]}," +
                            "\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[4,7]}}";
        var padded = json.PadRight((json.Length + 7) / 8 * 8);
        Assert.Equal(SafeTensorsFile(padded, [1, 0, 0xFF, 0xFF, 1, 0, 1]), File.ReadAllBytes(path));
    }

    [Fact]
    public void WriteReplacesAnExistingFileAndLeavesNoTemporaryFiles()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var path = folder.File("model.safetensors");
        File.WriteAllText(path, "old contents");
        SafeTensors.Write(path, new Dictionary<string, Tensor> { ["a"] = ones(3) });
        SafeTensors.Write(path, new Dictionary<string, Tensor> { ["b"] = zeros(2, 2, dtype: ScalarType.Int32) });
        Assert.Equal(["model.safetensors"], Directory.GetFiles(folder.Path).Select(f => Path.GetFileName(f)));
        var loaded = SafeTensors.Read(path);
        Assert.Equal(["b"], loaded.Keys);

        SafeTensors.Write(folder.File("empty.safetensors"), new Dictionary<string, Tensor>());
        Assert.Empty(SafeTensors.Read(folder.File("empty.safetensors")));

        var error = Assert.Throws<ArgumentException>(() =>
            SafeTensors.Write(folder.File("bad.safetensors"), new Dictionary<string, Tensor> { ["__metadata__"] = ones(1) }));
        Assert.Contains("__metadata__", error.Message);
        Assert.Equal(["empty.safetensors", "model.safetensors"], Directory.GetFiles(folder.Path).Select(f => Path.GetFileName(f)).Order());
    }

    [Fact]
    public void TruncatedFileNamesTheFileAndTheTensor()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var path = folder.File("cut.safetensors");
        using (NewDisposeScope())
            SafeTensors.Write(path, new Dictionary<string, Tensor> { ["alpha"] = ones(4), ["omega"] = ones(8) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("'omega'", error.Message);
        Assert.Contains("truncated", error.Message);
        Assert.Contains("32 bytes", error.Message); // what the tensor needs
        Assert.Contains("27 of them", error.Message); // what is there
        Assert.DoesNotContain("alpha", error.Message);
    }

    [Fact]
    public void FileShorterThanTheLengthFieldIsRefused()
    {
        using var folder = new TempFolder();
        var path = folder.File("tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("3 bytes", error.Message);
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsRefused()
    {
        using var folder = new TempFolder();
        var path = folder.File("long.safetensors");
        var bytes = SafeTensorsFile("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("1000", error.Message);
    }

    [Fact]
    public void HeaderThatIsNotJsonIsRefused()
    {
        using var folder = new TempFolder();
        var path = folder.File("json.safetensors");
        File.WriteAllBytes(path, SafeTensorsFile("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], ", new byte[4]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("not valid JSON", error.Message);
        Assert.IsAssignableFrom<JsonException>(error.InnerException);
    }

    [Fact]
    public void UnsupportedDtypeIsNamed()
    {
        using var folder = new TempFolder();
        var path = folder.File("dtype.safetensors");
        File.WriteAllBytes(path, SafeTensorsFile("{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("'w'", error.Message);
        Assert.Contains("Q4_K", error.Message);

        // A real safetensors dtype with no TorchSharp type: the header is fine, loading is refused.
        File.WriteAllBytes(path, SafeTensorsFile("{\"f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[2]));
        Assert.Equal("F8_E4M3", SafeTensors.ReadHeader(path)["f8"].DType);
        error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("'f8'", error.Message);
        Assert.Contains("F8_E4M3", error.Message);
    }

    [Fact]
    public void ShapeThatDisagreesWithTheOffsetsIsRefused()
    {
        using var folder = new TempFolder();
        var path = folder.File("shape.safetensors");
        File.WriteAllBytes(path, SafeTensorsFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("'w'", error.Message);
        Assert.Contains("12 bytes", error.Message);
        Assert.Contains("8 bytes", error.Message);
    }

    [Theory]
    [InlineData("[0,8]", "[4,12]", "overlaps")]
    [InlineData("[0,8]", "[12,20]", "contiguous")]
    [InlineData("[4,12]", "[12,20]", "start at 0")]
    [InlineData("[8,0]", "[8,16]", "end before")]
    [InlineData("[0,8]", "[8,16,24]", "expected 2")]
    [InlineData("[0,8]", "[8,-16]", "non-negative")]
    public void InvalidOffsetsAreRefused(string a, string b, string expected)
    {
        using var folder = new TempFolder();
        var path = folder.File("offsets.safetensors");
        var json = $"{{\"a\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{a}}},\"b\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{b}}}}}";
        File.WriteAllBytes(path, SafeTensorsFile(json, new byte[20]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.ReadHeader(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void BytesAfterTheLastTensorAreRefused()
    {
        using var folder = new TempFolder();
        var path = folder.File("extra.safetensors");
        File.WriteAllBytes(path, SafeTensorsFile("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[9]));
        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("5 bytes after", error.Message);
    }

    [Fact]
    public void MissingFileThrowsFileNotFound()
    {
        using var folder = new TempFolder();
        Assert.Throws<FileNotFoundException>(() => SafeTensors.Read(folder.File("nope.safetensors")));
    }

    [Fact]
    public void FiftyMegabytesRoundTripBitExactAndConvert()
    {
        // Speed is for benchmarks, not unit tests; this checks a realistic size round-trips and converts.
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var path = folder.File("big.safetensors");
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        for (var i = 0; i < 12; i++) tensors[$"layer.{i}.weight"] = randn(1024, 1024); // 4 MiB each
        tensors["embed"] = randn(1024, 1024).to(ScalarType.BFloat16);
        SafeTensors.Write(path, tensors);
        var loaded = SafeTensors.Read(path);
        foreach (var (name, t) in tensors) TensorAssert.BitEqual(t, loaded[name], name);
        var converted = SafeTensors.Read(path, ScalarType.BFloat16);
        TensorAssert.BitEqual(tensors["layer.3.weight"].to(ScalarType.BFloat16), converted["layer.3.weight"], "layer.3.weight");
    }

    /// <summary>The bytes of a safetensors file, built from the spec: u64 LE header length, header, data.</summary>
    internal static byte[] SafeTensorsFile(string json, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    static string ExpectedDType(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64", ScalarType.Float32 => "F32", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Int16 => "I16", ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8", ScalarType.Bool => "BOOL", ScalarType.ComplexFloat32 => "C64",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
