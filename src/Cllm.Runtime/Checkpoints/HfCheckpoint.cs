using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cllm.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Cllm.Checkpoints;

/// <summary>
/// Weights of a Hugging Face model folder: <c>model.safetensors</c>, or shards
/// <c>model-00001-of-0000N.safetensors</c> listed by <c>model.safetensors.index.json</c>.
/// Pickled PyTorch checkpoints (<c>pytorch_model.bin</c>, <c>*.pt</c>, <c>*.pth</c>) are refused.
/// </summary>
public static partial class HfCheckpoint
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    static readonly string[] PickleExtensions = [".bin", ".pt", ".pth"];
    static readonly Dictionary<string, string> FileMetadata = new() { ["format"] = "pt" };

    [GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial Regex ShardName();

    /// <summary>Loads all weights of a model folder.</summary>
    /// <param name="modelDirectory">The folder holding <c>model.safetensors</c> or the sharded index.</param>
    /// <param name="convertTo">If given, floating-point tensors are converted to this dtype.</param>
    /// <param name="device">If given, tensors are moved there.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">No weights file, or a shard named by the index is missing.</exception>
    /// <exception cref="NotSupportedException">Only pickled PyTorch checkpoints are present.</exception>
    /// <exception cref="InvalidDataException">A file or the index is malformed, or shards disagree.</exception>
    public static Dictionary<string, Tensor> ReadWeights(string modelDirectory, ScalarType? convertTo = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException(
                $"Model directory '{modelDirectory}' does not exist (looked for {IndexFileName} or {SingleFileName} in it).");
        TorchNative.EnsureLoaded();

        var index = Path.Combine(modelDirectory, IndexFileName);
        if (File.Exists(index)) return ReadSharded(modelDirectory, index, convertTo, device);
        var single = Path.Combine(modelDirectory, SingleFileName);
        if (File.Exists(single)) return SafeTensors.Read(single, convertTo, device);

        var pickles = Directory.EnumerateFiles(modelDirectory)
            .Where(f => PickleExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        if (pickles.Count > 0)
            throw new NotSupportedException(
                $"Model directory '{modelDirectory}' has no {SingleFileName} or {IndexFileName}, only pickled PyTorch checkpoint files " +
                $"({string.Join(", ", pickles)}). Unpickling can run arbitrary code hidden in the file, so they are refused. " +
                "Convert the checkpoint to safetensors once, in Python, in an environment you trust: with transformers, " +
                "`AutoModelForCausalLM.from_pretrained(path).save_pretrained(path, safe_serialization=True)`; or with safetensors, " +
                "`from safetensors.torch import save_model; save_model(model, 'model.safetensors', metadata={'format': 'pt'})` " +
                "(or `save_file(torch.load('pytorch_model.bin', weights_only=True), 'model.safetensors', metadata={'format': 'pt'})` when no weights are shared).");

        var others = Directory.EnumerateFiles(modelDirectory, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        throw new FileNotFoundException(
            $"No model weights in '{modelDirectory}': looked for {IndexFileName}, {SingleFileName} (and refused pickles: pytorch_model.bin, *.bin, *.pt, *.pth)." +
            (others.Count > 0 ? $" Other safetensors files are there ({string.Join(", ", others)}); load them with SafeTensors.Read." : ""),
            single);
    }

    /// <summary>
    /// Writes weights the way Hugging Face does: one <c>model.safetensors</c> when they fit in
    /// <paramref name="maxShardBytes"/>, else shards <c>model-0000i-of-0000N.safetensors</c> (filled in the
    /// dictionary's order; a tensor larger than the limit gets a shard of its own) plus
    /// <c>model.safetensors.index.json</c>. Files carry the metadata <c>{"format": "pt"}</c>. Weight files of
    /// an earlier save in the folder that the new layout doesn't use are removed.
    /// </summary>
    public static void WriteWeights(string modelDirectory, IReadOnlyDictionary<string, Tensor> tensors, long maxShardBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        TorchNative.EnsureLoaded();
        Directory.CreateDirectory(modelDirectory);

        // Refuse bad names and dtypes before any file is touched, so a failed save doesn't leave a mix of
        // new shards and an old index behind.
        var shards = new List<Dictionary<string, Tensor>>();
        var current = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        long currentBytes = 0, totalBytes = 0;
        foreach (var (name, tensor, _, _, bytes) in SafeTensors.Describe(tensors))
        {
            totalBytes += bytes;
            if (bytes > maxShardBytes)
            {
                shards.Add(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [name] = tensor });
                continue;
            }
            if (currentBytes + bytes > maxShardBytes)
            {
                shards.Add(current);
                current = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                currentBytes = 0;
            }
            current[name] = tensor;
            currentBytes += bytes;
        }
        if (current.Count > 0 || shards.Count == 0) shards.Add(current);

        var index = Path.Combine(modelDirectory, IndexFileName);
        var single = Path.Combine(modelDirectory, SingleFileName);
        if (shards.Count == 1)
        {
            SafeTensors.Write(single, shards[0], FileMetadata);
            // An index left by an earlier sharded save would win over the new file: remove it (errors propagate).
            File.Delete(index);
            foreach (var stale in ShardFiles(modelDirectory)) File.Delete(stale);
            return;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < shards.Count; i++)
        {
            var fileName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            names.Add(fileName);
            SafeTensors.Write(Path.Combine(modelDirectory, fileName), shards[i], FileMetadata);
            foreach (var name in shards[i].Keys) weightMap[name] = fileName;
        }
        WriteIndex(index, totalBytes, weightMap);
        File.Delete(single);
        foreach (var stale in ShardFiles(modelDirectory).Where(f => !names.Contains(Path.GetFileName(f)))) File.Delete(stale);
    }

    /// <summary>
    /// Reads every weight of a model folder (one file or shards) for which <paramref name="destination"/> returns a
    /// tensor straight into it (see <see cref="SafeTensors.ReadInto"/>). Returns the names of all stored tensors.
    /// </summary>
    public static IReadOnlySet<string> ReadWeightsInto(string modelDirectory, Func<string, Tensor?> destination)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        ArgumentNullException.ThrowIfNull(destination);
        var index = Path.Combine(modelDirectory, IndexFileName);
        var files = File.Exists(index)
            ? ShardPaths(modelDirectory, index)
            : File.Exists(Path.Combine(modelDirectory, SingleFileName)) ? [Path.Combine(modelDirectory, SingleFileName)] : null;
        if (files is null)
        {
            ReadWeights(modelDirectory); // throws the folder's precise error (missing, pickles only, other names)
            throw new UnreachableException();
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
            names.UnionWith(SafeTensors.ReadInto(file, destination));
        return names;
    }

    static Dictionary<string, Tensor> ReadSharded(string directory, string index, ScalarType? convertTo, Device? device)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        foreach (var shard in ShardPaths(directory, index))
            foreach (var (name, tensor) in SafeTensors.Read(shard, convertTo, device))
                result.Add(name, tensor);
        scope.MoveToOuter(result.Values);
        return result;
    }

    /// <summary>The shard files of an index, after checking that every shard exists and the index matches their headers.</summary>
    static List<string> ShardPaths(string directory, string index)
    {
        var weightMap = ReadWeightMap(index);
        var shardFiles = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var missing = shardFiles.Where(s => !File.Exists(Path.Combine(directory, s))).ToList();
        if (missing.Count > 0)
            throw new FileNotFoundException(
                $"Index '{index}' lists shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))} " +
                $"that {(missing.Count > 1 ? "are" : "is")} missing from '{directory}' (a partial download?).",
                Path.Combine(directory, missing[0]));

        // Check all headers before loading any data: duplicates across shards and index entries that
        // point at the wrong shard are reported without reading gigabytes first.
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var shard in shardFiles)
        {
            foreach (var name in SafeTensors.ReadHeader(Path.Combine(directory, shard)).Keys)
            {
                if (owner.TryGetValue(name, out var first))
                    throw new InvalidDataException(
                        $"Tensor '{name}' is stored in two shards of '{index}': '{first}' and '{shard}'.");
                owner[name] = shard;
            }
        }
        foreach (var (name, shard) in weightMap)
        {
            if (!owner.TryGetValue(name, out var actual))
                throw new InvalidDataException($"Index '{index}' maps tensor '{name}' to shard '{shard}', which does not contain it.");
            if (actual != shard)
                throw new InvalidDataException(
                    $"Index '{index}' maps tensor '{name}' to shard '{shard}', but it is stored in shard '{actual}'.");
        }

        return shardFiles.Select(shard => Path.Combine(directory, shard)).ToList();
    }

    static Dictionary<string, string> ReadWeightMap(string index)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(index));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Index '{index}' is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object ||
                !document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"Index '{index}' has no \"weight_map\" object.");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                var shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : null;
                // Shards sit beside the index; a path would let an index reach files elsewhere.
                if (string.IsNullOrEmpty(shard) || shard != Path.GetFileName(shard) || shard is "." or "..")
                    throw new InvalidDataException(
                        $"Index '{index}' maps tensor '{entry.Name}' to {entry.Value.GetRawText()}; expected the file name of a shard in the same folder.");
                if (!result.TryAdd(entry.Name, shard))
                    throw new InvalidDataException($"Index '{index}' lists tensor '{entry.Name}' twice.");
            }
            return result;
        }
    }

    static void WriteIndex(string index, long totalBytes, SortedDictionary<string, string> weightMap)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalBytes);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, shard) in weightMap) json.WriteString(name, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        var temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(index))!, $".{IndexFileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temp, buffer.ToArray());
            File.Move(temp, index, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    static IEnumerable<string> ShardFiles(string directory) =>
        Directory.EnumerateFiles(directory, "model-*-of-*.safetensors").Where(f => ShardName().IsMatch(Path.GetFileName(f))).ToList();

    static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
