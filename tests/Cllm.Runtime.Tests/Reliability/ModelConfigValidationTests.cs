using System.Text.Json.Nodes;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>
/// config.json with one field wrong: loading fails with an error that names the file, the field and the value
/// (no "cannot be converted to System.Int32", no native allocation of an absurd shape).
/// </summary>
public sealed class ModelConfigValidationTests : IDisposable
{
    readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    static JsonObject Valid() => JsonNode.Parse(ModelConfig.Preset("tiny").ToJson())!.AsObject();

    string Write(JsonObject json)
    {
        var path = _folder.File("config.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    public static TheoryData<string, string> WrongFields()
    {
        var data = new TheoryData<string, string>();
        foreach (var field in new[] { "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads" })
            foreach (var value in new[] { "\"64\"", "64.5", "-1", "0", "true", "[64]", "{}", "1e12", "null" })
                data.Add(field, value);
        foreach (var value in new[] { "\"2\"", "2.5", "-2", "0", "[2]" })
            data.Add("num_key_value_heads", value);
        foreach (var value in new[] { "\"16\"", "16.5", "-16", "0" })
            data.Add("head_dim", value);
        foreach (var value in new[] { "\"1e-5\"", "-1e-5", "0", "2", "[1e-5]" })
            data.Add("rms_norm_eps", value);
        foreach (var value in new[] { "\"10000\"", "-1", "0", "false" })
            data.Add("rope_theta", value);
        foreach (var value in new[] { "\"2048\"", "2048.5", "1", "-5", "1e9" })
            data.Add("max_position_embeddings", value);
        foreach (var value in new[] { "\"true\"", "1", "\"yes\"" })
        {
            data.Add("tie_word_embeddings", value);
            data.Add("attention_bias", value);
        }
        foreach (var value in new[] { "\"1\"", "1.5", "-1", "4096", "999999", "[1]" })
            data.Add("bos_token_id", value);
        foreach (var value in new[] { "\"2\"", "2.5", "-2", "4096", "999999", "[2, 99999]", "[2, \"x\"]", "{\"id\": 2}", "[null]" })
            data.Add("eos_token_id", value);
        foreach (var value in new[] { "\"4096\"", "0", "-1", "4096.5" })
            data.Add("sliding_window", value);
        foreach (var value in new[] { "\"llama\"", "[]", "[1]", "{}" })
            data.Add("architectures", value);
        foreach (var value in new[] { "\"linear\"", "[1]", "{\"rope_type\": 5, \"factor\": 2}", "{\"rope_type\": \"linear\", \"factor\": \"2\"}",
                     "{\"rope_type\": \"linear\", \"factor\": 0.5}", "{\"rope_type\": \"yarn\", \"factor\": 2}", "{\"factor\": 2}",
                     "{\"rope_type\": \"llama3\", \"factor\": 8, \"original_max_position_embeddings\": \"8192\"}",
                     "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1, \"original_max_position_embeddings\": 64}" })
            data.Add("rope_scaling", value);
        return data;
    }

    [Theory]
    [MemberData(nameof(WrongFields))]
    public void AWrongFieldNamesFileFieldAndValue(string field, string value)
    {
        var json = Valid();
        if (field == "sliding_window") json["architectures"] = new JsonArray("MistralForCausalLM");
        json[field] = JsonNode.Parse(value);
        var path = Write(json);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(field.Split('.')[0], e.Message);
        if (value == "null")
            Assert.Contains("missing", e.Message);
        else if (field != "rope_scaling" && !value.StartsWith('{') && !(field == "eos_token_id" && value.StartsWith('[')))
            Assert.Contains(JsonNode.Parse(value)!.ToJsonString(), e.Message);
        Assert.DoesNotContain("System.", e.Message);
    }

    [Theory]
    [InlineData("vocab_size")]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    public void AMissingRequiredFieldIsNamed(string field)
    {
        var json = Valid();
        json.Remove(field);
        var path = Write(json);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(path));
        Assert.Contains($"required field '{field}' is missing", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("[1, 2]")]
    [InlineData("\"config\"")]
    [InlineData("{\"hidden_size\": 64,}")]
    public void NotAJsonObjectIsNamed(string text)
    {
        var path = _folder.File("config.json");
        File.WriteAllText(path, text);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(path));
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void SizesThatWouldNeedTerabytesAreRefusedBeforeAllocating()
    {
        var json = Valid();
        json["vocab_size"] = 16_000_000;
        json["hidden_size"] = 1_000_000;
        json["head_dim"] = 250_000;
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(Write(json)));
        Assert.Contains("parameters; check vocab_size", e.Message);
    }

    [Fact]
    public void HeadsThatDoNotDivideAreNamed()
    {
        var json = Valid();
        json["num_key_value_heads"] = 3;
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(Write(json)));
        Assert.Contains("num_key_value_heads (3) must divide num_attention_heads (4)", e.Message);
    }

    [Fact]
    public void TheValidConfigStillLoadsWithEveryFieldRead()
    {
        var json = Valid();
        json["eos_token_id"] = new JsonArray(2, 3);
        json["rope_scaling"] = JsonNode.Parse("{\"rope_type\": \"llama3\", \"factor\": 8, \"original_max_position_embeddings\": 64}");
        var config = ModelConfig.Load(Write(json));
        Assert.Equal(ModelConfig.Preset("tiny") with { EosTokenIds = config.EosTokenIds, RopeScaling = new RopeScaling("llama3", 8, 1, 4, 64) },
            config);
        Assert.Equal([2, 3], config.EosTokenIds);
    }
}
