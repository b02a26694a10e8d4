using System.Text.Json;
using Cllm.Checkpoints;
using Cllm.Native;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Checkpoints;

public sealed class HfCheckpointTests
{
    static Dictionary<string, Tensor> Weights()
    {
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["model.embed_tokens.weight"] = randn(16, 8).to(ScalarType.BFloat16), // 256 bytes
        };
        for (var layer = 0; layer < 4; layer++)
        {
            weights[$"model.layers.{layer}.self_attn.qkv_proj.weight"] = randn(24, 8); // 768 bytes: over the limit, own shard
            weights[$"model.layers.{layer}.mlp.down_proj.weight"] = randn(8, 16).to(ScalarType.Float16); // 256 bytes
            weights[$"model.layers.{layer}.input_layernorm.weight"] = ones(8); // 32 bytes
        }
        weights["model.norm.weight"] = ones(8);
        weights["model.rotary.inv_freq"] = arange(4, dtype: ScalarType.Int64);
        return weights;
    }

    [Fact]
    public void AShardIsFilledUpToItsLimitInclusiveAndATensorOfExactlyTheLimitSharesNoShard()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        // 64 + 64 + 128 bytes fill a 256-byte shard exactly; the next 256-byte tensor is exactly the limit (a shard of
        // its own); the last 32 bytes start a third shard.
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["a"] = randn(16), ["b"] = randn(16), ["c"] = randn(32), ["d"] = randn(64), ["e"] = randn(8),
        };
        HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 256);
        using var index = JsonDocument.Parse(File.ReadAllText(folder.File("model.safetensors.index.json")));
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(["model-00001-of-00003.safetensors"], new[] { map["a"], map["b"], map["c"] }.Distinct());
        Assert.Equal("model-00002-of-00003.safetensors", map["d"]);
        Assert.Equal("model-00003-of-00003.safetensors", map["e"]);
        var loaded = HfCheckpoint.ReadWeights(folder.Path);
        foreach (var (name, expected) in weights) TensorAssert.BitEqual(expected, loaded[name], name);
    }

    [Fact]
    public void ShardedRoundTripMatchesTheHuggingFaceLayout()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        var baseline = TensorAssert.LiveTensors();
        using (NewDisposeScope())
        {
            var weights = Weights();
            var afterWeights = TensorAssert.LiveTensors();
            HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 600);

            var shardFiles = Directory.GetFiles(folder.Path, "model-*.safetensors").Select(f => Path.GetFileName(f)).Order().ToList();
            Assert.True(shardFiles.Count >= 3, $"{shardFiles.Count} shards");
            for (var i = 0; i < shardFiles.Count; i++)
                Assert.Equal($"model-{i + 1:D5}-of-{shardFiles.Count:D5}.safetensors", shardFiles[i]);
            Assert.False(File.Exists(folder.File("model.safetensors")));
            Assert.Equal(
                shardFiles.Append("model.safetensors.index.json").Order(),
                Directory.GetFiles(folder.Path).Select(f => Path.GetFileName(f)).Order()); // no temporary files left

            using (var index = JsonDocument.Parse(File.ReadAllText(folder.File("model.safetensors.index.json"))))
            {
                var totalSize = weights.Values.Sum(t => t.numel() * t.element_size());
                Assert.Equal(totalSize, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
                var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
                Assert.Equal(weights.Keys.Order(StringComparer.Ordinal), map.Keys);
                Assert.Equal(shardFiles, map.Values.Distinct().Order());
                foreach (var shard in shardFiles)
                {
                    Assert.Equal("pt", SafeTensors.ReadMetadata(folder.File(shard))["format"]);
                    var inShard = SafeTensors.ReadHeader(folder.File(shard));
                    Assert.Equal(map.Where(kv => kv.Value == shard).Select(kv => kv.Key).Order(StringComparer.Ordinal),
                        inShard.Keys.Order(StringComparer.Ordinal));
                    var bytes = inShard.Values.Sum(t => t.ByteLength);
                    Assert.True(bytes <= 600 || inShard.Count == 1, $"{shard}: {bytes} bytes in {inShard.Count} tensors");
                }
            }

            var loaded = HfCheckpoint.ReadWeights(folder.Path);
            Assert.Equal(afterWeights + weights.Count, TensorAssert.LiveTensors());
            Assert.Equal(weights.Keys.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, expected) in weights) TensorAssert.BitEqual(expected, loaded[name], name);

            var asFloat = HfCheckpoint.ReadWeights(folder.Path, ScalarType.Float32);
            Assert.Equal(ScalarType.Float32, asFloat["model.embed_tokens.weight"].dtype);
            Assert.Equal(ScalarType.Int64, asFloat["model.rotary.inv_freq"].dtype);
        }
        Assert.Equal(baseline, TensorAssert.LiveTensors());
    }

    [Fact]
    public void SmallWeightsGoToOneFileAndASaveReplacesAnEarlierLayout()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var weights = Weights();

        HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 600);
        Assert.True(File.Exists(folder.File("model.safetensors.index.json")));

        HfCheckpoint.WriteWeights(folder.Path, weights);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(folder.Path).Select(f => Path.GetFileName(f)));
        Assert.Equal("pt", SafeTensors.ReadMetadata(folder.File("model.safetensors"))["format"]);
        var loaded = HfCheckpoint.ReadWeights(folder.Path);
        foreach (var (name, expected) in weights) TensorAssert.BitEqual(expected, loaded[name], name);

        // Sharded again, then with fewer shards: model.safetensors and surplus shards go away.
        HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 600);
        Assert.False(File.Exists(folder.File("model.safetensors")));
        HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 2000);
        var shards = Directory.GetFiles(folder.Path, "model-*.safetensors").Select(f => Path.GetFileName(f)).ToList();
        Assert.All(shards, s => Assert.EndsWith($"-of-{shards.Count:D5}.safetensors", s));
        loaded = HfCheckpoint.ReadWeights(folder.Path);
        foreach (var (name, expected) in weights) TensorAssert.BitEqual(expected, loaded[name], name);
    }

    [Fact]
    public void UnstorableDtypeIsRefusedBeforeAnyFileIsWritten()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using var scope = NewDisposeScope();
        var weights = Weights();
        weights["zz.complex128"] = zeros(2, dtype: ScalarType.ComplexFloat64);
        var error = Assert.Throws<ArgumentException>(() => HfCheckpoint.WriteWeights(folder.Path, weights, maxShardBytes: 600));
        Assert.Contains("zz.complex128", error.Message);
        Assert.Empty(Directory.GetFiles(folder.Path));
    }

    [Fact]
    public void MissingShardNamesTheIndexAndTheShard()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using (NewDisposeScope()) HfCheckpoint.WriteWeights(folder.Path, Weights(), maxShardBytes: 600);
        var missing = Directory.GetFiles(folder.Path, "model-00002-of-*.safetensors").Single();
        File.Delete(missing);

        var baseline = TensorAssert.LiveTensors();
        var error = Assert.Throws<FileNotFoundException>(() => HfCheckpoint.ReadWeights(folder.Path));
        Assert.Contains("model.safetensors.index.json", error.Message);
        Assert.Contains(Path.GetFileName(missing), error.Message);
        Assert.Equal(missing, error.FileName);
        Assert.Equal(baseline, TensorAssert.LiveTensors());
    }

    [Fact]
    public void TensorInTwoShardsNamesBothShards()
    {
        TorchNative.EnsureLoaded();
        using var folder = new TempFolder();
        using (NewDisposeScope())
        {
            SafeTensors.Write(folder.File("model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["a"] = ones(2), ["x"] = ones(2) });
            SafeTensors.Write(folder.File("model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["b"] = ones(2), ["x"] = zeros(2) });
        }
        File.WriteAllText(folder.File("model.safetensors.index.json"), """
            {"metadata": {"total_size": 32}, "weight_map": {
              "a": "model-00001-of-00002.safetensors",
              "x": "model-00001-of-00002.safetensors",
              "b": "model-00002-of-00002.safetensors"}}
            """);
        var error = Assert.Throws<InvalidDataException>(() => HfCheckpoint.ReadWeights(folder.Path));
        Assert.Contains("'x'", error.Message);
        Assert.Contains("model-00001-of-00002.safetensors", error.Message);
        Assert.Contains("model-00002-of-00002.safetensors", error.Message);
    }

    [Fact]
    public void IndexPointingOutsideTheFolderIsRefused()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder.File("model.safetensors.index.json"), """{"weight_map": {"a": "../elsewhere.safetensors"}}""");
        var error = Assert.Throws<InvalidDataException>(() => HfCheckpoint.ReadWeights(folder.Path));
        Assert.Contains("'a'", error.Message);
    }

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("consolidated.00.pth")]
    [InlineData("model.pt")]
    public void PickledCheckpointsAreRefused(string fileName)
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder.File(fileName), [0x80, 0x02]); // a pickle's opening bytes: never opened
        var error = Assert.Throws<NotSupportedException>(() => HfCheckpoint.ReadWeights(folder.Path));
        Assert.Contains(fileName, error.Message);
        Assert.Contains("arbitrary code", error.Message);
        Assert.Contains("safe_serialization=True", error.Message);
    }

    [Fact]
    public void MissingDirectoryIsNamed()
    {
        using var folder = new TempFolder();
        var missing = folder.File("no-such-model");
        var error = Assert.Throws<DirectoryNotFoundException>(() => HfCheckpoint.ReadWeights(missing));
        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void DirectoryWithoutWeightsNamesWhatWasLookedFor()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder.File("config.json"), "{}");
        var error = Assert.Throws<FileNotFoundException>(() => HfCheckpoint.ReadWeights(folder.Path));
        Assert.Contains(folder.Path, error.Message);
        Assert.Contains("model.safetensors", error.Message);
        Assert.Contains("model.safetensors.index.json", error.Message);
    }
}
