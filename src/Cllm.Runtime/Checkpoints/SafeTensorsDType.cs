using static TorchSharp.torch;

namespace Cllm.Checkpoints;

/// <summary>The safetensors dtype names, their element sizes, and the TorchSharp types they map to.</summary>
internal static class SafeTensorsDType
{
    internal readonly record struct Entry(string Name, int ElementSize, ScalarType? ScalarType);

    // Every dtype of the safetensors format whose elements are whole bytes. Those without a ScalarType
    // (8-bit floats, unsigned 16/32/64-bit integers) have no TorchSharp 0.107 equivalent: their headers
    // can be checked, but their tensors can't be loaded.
    static readonly Entry[] All =
    [
        new("BOOL", 1, ScalarType.Bool),
        new("U8", 1, ScalarType.Byte),
        new("I8", 1, ScalarType.Int8),
        new("I16", 2, ScalarType.Int16),
        new("F16", 2, ScalarType.Float16),
        new("BF16", 2, ScalarType.BFloat16),
        new("I32", 4, ScalarType.Int32),
        new("F32", 4, ScalarType.Float32),
        new("I64", 8, ScalarType.Int64),
        new("F64", 8, ScalarType.Float64),
        new("C64", 8, ScalarType.ComplexFloat32),
        new("F8_E5M2", 1, null),
        new("F8_E4M3", 1, null),
        new("F8_E8M0", 1, null),
        new("U16", 2, null),
        new("U32", 4, null),
        new("U64", 8, null),
    ];

    static readonly Dictionary<string, Entry> ByName = All.ToDictionary(e => e.Name, StringComparer.Ordinal);

    static readonly Dictionary<ScalarType, Entry> ByScalarType =
        All.Where(e => e.ScalarType is not null).ToDictionary(e => e.ScalarType!.Value);

    /// <summary>The dtypes that load into TorchSharp tensors, for error messages.</summary>
    internal static string Loadable => string.Join(", ", All.Where(e => e.ScalarType is not null).Select(e => e.Name));

    internal static bool TryGet(string name, out Entry entry) => ByName.TryGetValue(name, out entry);

    internal static bool TryGet(ScalarType type, out Entry entry) => ByScalarType.TryGetValue(type, out entry);
}
