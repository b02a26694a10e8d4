using System.Text.Json.Nodes;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>
/// Qwen3 and Phi-3 config.json files in the layout their Hugging Face checkpoints ship (Qwen3-0.6B, Phi-3-mini-4k,
/// Phi-3.5-mini with longrope), and the errors for their own fields.
/// </summary>
public sealed class Qwen3Phi3ConfigTests : IDisposable
{
    readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    string Write(JsonObject json)
    {
        var path = _folder.File("config.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    // Qwen3-0.6B's shape: head_dim 128 where hidden / heads is 64; a sliding_window field that is off.
    static JsonObject Qwen3() => JsonNode.Parse("""
        {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false, "head_dim": 128,
         "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3072, "max_position_embeddings": 40960,
         "max_window_layers": 28, "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 32768,
         "use_sliding_window": false, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 151936,
         "bos_token_id": 151643, "eos_token_id": 151645}
        """)!.AsObject();

    // Phi-3.5-mini's shape (head_dim 96, so 48 factors each), with longrope and the original length at the top level.
    static JsonObject Phi35(string type = "longrope")
    {
        var json = JsonNode.Parse("""
            {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_act": "silu", "hidden_size": 3072,
             "intermediate_size": 8192, "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-05,
             "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": false, "vocab_size": 32064,
             "bos_token_id": 1, "eos_token_id": 32000}
            """)!.AsObject();
        json["rope_scaling"] = new JsonObject
        {
            ["type"] = type,
            ["short_factor"] = new JsonArray([.. Enumerable.Range(0, 48).Select(j => (JsonNode)(1 + 0.01 * j))]),
            ["long_factor"] = new JsonArray([.. Enumerable.Range(0, 48).Select(j => (JsonNode)(1 + 1.5 * j))]),
        };
        return json;
    }

    [Fact]
    public void Qwen3ReadsHeadDimQkNormAndNoBias()
    {
        var config = ModelConfig.Load(Write(Qwen3()));
        Assert.Equal("Qwen3ForCausalLM", config.Architecture);
        Assert.True(config.QkNorm);
        Assert.False(config.AttentionBias);
        Assert.Equal(128, config.HeadDim);
        Assert.Null(config.SlidingWindow); // use_sliding_window is false
        Assert.True(config.TieWordEmbeddings);

        var byType = Qwen3();
        byType.Remove("architectures");
        Assert.Equal(config, ModelConfig.Load(Write(byType)) with { EosTokenIds = config.EosTokenIds });

        var biased = Qwen3();
        biased["attention_bias"] = true;
        Assert.True(ModelConfig.Load(Write(biased)).AttentionBias);
    }

    [Theory]
    [InlineData("longrope")]
    [InlineData("su")]
    public void Phi35LongropeResolvesFactorOriginalLengthAndAttentionFactorAsHuggingFace(string type)
    {
        var config = ModelConfig.Load(Write(Phi35(type)));
        var s = config.RopeScaling!;
        Assert.Equal("longrope", s.Type);
        Assert.Equal(4096, s.OriginalMaxPositions);
        Assert.Equal(32, s.Factor);
        Assert.Equal(Math.Sqrt(1 + Math.Log(32) / Math.Log(4096)), s.AttentionFactor, 12);
        Assert.Equal(48, s.ShortFactor!.Count);
        Assert.Equal(1 + 1.5 * 47, s.LongFactor![47]);
        Assert.False(config.QkNorm);
        Assert.True(config.FusedCheckpointTensors);
        // Written back and read again, it is the same config.
        var again = ModelConfig.FromJson(JsonNode.Parse(config.ToJson())!.AsObject());
        Assert.Equal(config, again with { EosTokenIds = config.EosTokenIds });

        var given = Phi35(type);
        given["rope_scaling"]!["attention_factor"] = 1.5;
        Assert.Equal(1.5, ModelConfig.Load(Write(given)).RopeScaling!.AttentionFactor);
    }

    [Fact]
    public void Phi3Mini4kHasNoScalingAndKeepsItsWindow()
    {
        var json = Phi35();
        json.Remove("rope_scaling");
        json["max_position_embeddings"] = 4096;
        json["sliding_window"] = 2047;
        var config = ModelConfig.Load(Write(json));
        Assert.Null(config.RopeScaling);
        Assert.Equal(2047, config.SlidingWindow);
        Assert.Equal(96, config.HeadDim);
    }

    public static TheoryData<string, string, string> WrongPhi3Fields() => new()
    {
        { "rope_scaling.short_factor", "[1, 2, 3]", "a list of 3 numbers" },
        { "rope_scaling.long_factor", "\"1, 2\"", "\"1, 2\" (a string)" },
        { "rope_scaling.long_factor[5]", "LIST:-1", "-1" },
        { "rope_scaling.short_factor[0]", "LIST:\"x\"", "\"x\" (a string)" },
        { "partial_rotary_factor", "0.75", "0.75" },
        { "original_max_position_embeddings", "\"4096\"", "\"4096\" (a string)" },
    };

    [Theory]
    [MemberData(nameof(WrongPhi3Fields))]
    public void AWrongPhi3FieldNamesFileFieldValueAndFix(string field, string value, string shown)
    {
        var json = Phi35();
        var key = field.Split('.')[^1].Split('[')[0];
        var target = field.StartsWith("rope_scaling.", StringComparison.Ordinal) ? json["rope_scaling"]!.AsObject() : json;
        if (value.StartsWith("LIST:", StringComparison.Ordinal))
        {
            var index = int.Parse(field.Split('[')[1].TrimEnd(']'));
            target[key]![index] = JsonNode.Parse(value[5..]);
        }
        else target[key] = JsonNode.Parse(value);
        var path = Write(json);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains(shown, e.Message);
        Assert.Contains("Fix or remove", e.Message);
    }

    [Fact]
    public void APhi3HeadDimThatDoesNotSpanHiddenIsNamed()
    {
        var json = Phi35();
        json["head_dim"] = 128;
        json["rope_scaling"] = null;
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(Write(json)));
        Assert.Contains("head_dim 128", e.Message);
        Assert.Contains("hidden_size (3072)", e.Message);
    }
}
