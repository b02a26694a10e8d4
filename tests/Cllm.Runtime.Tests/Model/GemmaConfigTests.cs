using System.Text.Json.Nodes;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Model;

/// <summary>Gemma 2 and Gemma 3 text config.json files as Hugging Face publishes them (sizes of gemma-2-2b and
/// gemma-3-1b), and their bad fields.</summary>
public sealed class GemmaConfigTests : IDisposable
{
    readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    const string Gemma2 = """
        {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "attn_logit_softcapping": 50.0,
         "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304,
         "intermediate_size": 9216, "max_position_embeddings": 8192, "num_attention_heads": 8, "num_hidden_layers": 26,
         "num_key_value_heads": 4, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
         "sliding_window": 4096, "vocab_size": 256000, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}
        """;

    const string Gemma3 = """
        {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "attn_logit_softcapping": null,
         "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
         "intermediate_size": 6912, "max_position_embeddings": 32768, "num_attention_heads": 4, "num_hidden_layers": 26,
         "num_key_value_heads": 1, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
         "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
         "vocab_size": 262144, "bos_token_id": 2, "eos_token_id": [1, 106]}
        """;

    ModelConfig Load(string text, Action<JsonObject>? change = null)
    {
        var json = JsonNode.Parse(text)!.AsObject();
        change?.Invoke(json);
        var path = _folder.File("config.json");
        File.WriteAllText(path, json.ToJsonString());
        return ModelConfig.Load(path);
    }

    [Fact]
    public void Gemma2ConfigReadsEveryField()
    {
        var c = Load(Gemma2);
        Assert.Equal(("Gemma2ForCausalLM", 2304, 256, 8, 4), (c.Architecture, c.HiddenSize, c.HeadDim, c.NumHeads, c.NumKvHeads));
        Assert.Equal((256.0, 50.0, 30.0), (c.QueryPreAttnScalar, c.AttnLogitSoftcap, c.FinalLogitSoftcap));
        Assert.True(c.TieWordEmbeddings); // Gemma ties unless told otherwise
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Equal([true, false, true, false], Enumerable.Range(0, 4).Select(c.IsSlidingLayer));
        Assert.Null(c.RopeLocalTheta);
        Assert.False(c.QkNorm);
        Assert.Equal(2_614_341_888, c.ParameterCount); // gemma-2-2b's published count
    }

    [Fact]
    public void Gemma3ConfigReadsPatternOrLayerTypesAlike()
    {
        var c = Load(Gemma3);
        Assert.Equal((1_000_000.0, 10000.0, 512), (c.RopeTheta, c.RopeLocalTheta, c.SlidingWindow));
        Assert.Null(c.AttnLogitSoftcap);
        Assert.Null(c.FinalLogitSoftcap);
        Assert.True(c.QkNorm);
        Assert.Equal([5, 11, 17, 23], Enumerable.Range(0, 26).Where(i => !c.IsSlidingLayer(i)));
        var types = Enumerable.Range(0, 26).Select(i => (JsonNode)((i + 1) % 6 == 0 ? "full_attention" : "sliding_attention")).ToArray();
        var fromTypes = Load(Gemma3, j => { j.Remove("sliding_window_pattern"); j["layer_types"] = new JsonArray(types); });
        Assert.Equal(c with { EosTokenIds = [] }, fromTypes with { EosTokenIds = [] });
        // model_type alone names the class too.
        Assert.Equal("Gemma3ForCausalLM", Load(Gemma3, j => j.Remove("architectures")).Architecture);
        // Missing soft-cap fields take Gemma 2's defaults, explicit nulls turn capping off.
        Assert.Equal((50.0, 30.0), (Load(Gemma2, j => { j.Remove("attn_logit_softcapping"); j.Remove("final_logit_softcapping"); })
            is var d ? (d.AttnLogitSoftcap, d.FinalLogitSoftcap) : default));
        Assert.Null(Load(Gemma2, j => j["attn_logit_softcapping"] = null).AttnLogitSoftcap);
    }

    [Theory]
    [InlineData("hidden_activation", "\"gelu\"")]
    [InlineData("hidden_activation", "\"silu\"")]
    [InlineData("query_pre_attn_scalar", "\"256\"")]
    [InlineData("query_pre_attn_scalar", "0")]
    [InlineData("attn_logit_softcapping", "-50")]
    [InlineData("final_logit_softcapping", "\"30\"")]
    [InlineData("rope_local_base_freq", "0")]
    [InlineData("sliding_window_pattern", "0")]
    [InlineData("layer_types", "[\"sliding_attention\"]")]
    [InlineData("layer_types", "\"sliding_attention\"")]
    public void ABadGemmaFieldIsNamedWithItsValue(string field, string value)
    {
        var path = _folder.File("config.json");
        var json = JsonNode.Parse(Gemma3)!.AsObject();
        json[field] = JsonNode.Parse(value);
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(field, e.Message);
        Assert.Contains(JsonNode.Parse(value)!.ToJsonString(), e.Message);
    }

    [Fact]
    public void LayerTypesWithoutAPeriodAreRefused()
    {
        var types = Enumerable.Range(0, 26).Select(i => (JsonNode)(i is 3 or 5 ? "full_attention" : "sliding_attention")).ToArray();
        var e = Assert.Throws<InvalidDataException>(() => Load(Gemma3, j => j["layer_types"] = new JsonArray(types)));
        Assert.Contains("layer_types", e.Message);
        Assert.Contains("every n-th one full", e.Message);
    }
}
