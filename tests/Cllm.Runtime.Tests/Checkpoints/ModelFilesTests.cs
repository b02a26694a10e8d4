using Cllm.Checkpoints;
using Cllm.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Checkpoints;

public sealed class ModelFilesTests
{
    public static TheoryData<string> Shapes() => [.. TestModels.Shapes];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SaveThenLoadIsBitExactWithHuggingFaceNames(string shape)
    {
        using var folder = new TempFolder();
        using var model = TestModels.Create(shape, seed: 3);
        ModelFiles.Save(model, folder.Path);

        // The files carry Hugging Face's names and per-projection tensors.
        var header = SafeTensors.ReadHeader(folder.File("model.safetensors"));
        // Phi-3 checkpoints keep their fused tensors under their own names.
        var fused = model.Config.FusedCheckpointTensors;
        Assert.Contains(fused ? "model.layers.1.self_attn.qkv_proj.weight" : "model.layers.1.self_attn.k_proj.weight", header.Keys);
        Assert.Contains(fused ? "model.layers.0.mlp.gate_up_proj.weight" : "model.layers.0.mlp.up_proj.weight", header.Keys);
        Assert.Equal(model.Config.QkNorm, header.ContainsKey("model.layers.0.self_attn.q_norm.weight"));
        Assert.Equal(model.Config.TieWordEmbeddings, !header.ContainsKey("lm_head.weight"));
        Assert.Equal(model.Config.AttentionBias, header.ContainsKey("model.layers.0.self_attn.q_proj.bias"));
        if (!fused)
            Assert.Equal([model.Config.NumKvHeads * model.Config.HeadDim, model.Config.HiddenSize], header["model.layers.0.self_attn.v_proj.weight"].Shape);
        else
            Assert.Equal([model.Config.QkvSize, model.Config.HiddenSize], header["model.layers.0.self_attn.qkv_proj.weight"].Shape);
        Assert.Equal(model.Config, ModelConfig.Load(folder.File("config.json")) with { EosTokenIds = model.Config.EosTokenIds });
        Assert.Equal(model.Config.EosTokenIds, ModelConfig.Load(folder.File("config.json")).EosTokenIds);

        using var loaded = ModelFiles.Load(folder.Path);
        var expected = model.state_dict();
        foreach (var (name, tensor) in loaded.state_dict()) TensorAssert.BitEqual(expected[name], tensor, name);
    }

    [Fact]
    public void ShardedBFloat16SaveLoads()
    {
        using var folder = new TempFolder();
        using var model = TestModels.Create("qwen2-bias", seed: 4, ScalarType.BFloat16);
        ModelFiles.Save(model, folder.Path, maxShardBytes: 100_000);
        Assert.True(File.Exists(folder.File("model.safetensors.index.json")));
        Assert.Contains("\"torch_dtype\": \"bfloat16\"", File.ReadAllText(folder.File("config.json")));
        using var loaded = ModelFiles.Load(folder.Path, ScalarType.BFloat16);
        var expected = model.state_dict();
        foreach (var (name, tensor) in loaded.state_dict()) TensorAssert.BitEqual(expected[name], tensor, name);
    }

    [Fact]
    public void MissingExtraAndMisshapenTensorsAreNamed()
    {
        using var folder = new TempFolder();
        using var model = TestModels.Create("mha", seed: 5);
        ModelFiles.Save(model, folder.Path);
        var weights = folder.File("model.safetensors");
        using var scope = NewDisposeScope();
        var original = SafeTensors.Read(weights);

        var missing = new Dictionary<string, Tensor>(original);
        missing.Remove("model.layers.1.mlp.down_proj.weight");
        SafeTensors.Write(weights, missing);
        var e = Assert.Throws<InvalidDataException>(() => ModelFiles.Load(folder.Path));
        Assert.Contains("model.layers.1.mlp.down_proj.weight", e.Message);
        Assert.Contains("missing", e.Message);

        var extra = new Dictionary<string, Tensor>(original) { ["model.layers.9.mlp.down_proj.weight"] = zeros(2, 2) };
        SafeTensors.Write(weights, extra);
        e = Assert.Throws<InvalidDataException>(() => ModelFiles.Load(folder.Path));
        Assert.Contains("model.layers.9.mlp.down_proj.weight", e.Message);

        var misshapen = new Dictionary<string, Tensor>(original) { ["model.norm.weight"] = ones(7) };
        SafeTensors.Write(weights, misshapen);
        e = Assert.Throws<InvalidDataException>(() => ModelFiles.Load(folder.Path));
        Assert.Contains("model.norm.weight", e.Message);
        Assert.Contains("[7]", e.Message);
    }

    [Fact]
    public void MissingConfigOrFolderIsNamed()
    {
        using var folder = new TempFolder();
        var e = Assert.Throws<FileNotFoundException>(() => ModelFiles.Load(folder.Path));
        Assert.Contains("config.json", e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => ModelFiles.Load(folder.File("nope")));
        File.WriteAllText(folder.File("config.json"), "{ not json");
        var bad = Assert.Throws<InvalidDataException>(() => ModelFiles.Load(folder.Path));
        Assert.Contains("config.json", bad.Message);
    }
}
