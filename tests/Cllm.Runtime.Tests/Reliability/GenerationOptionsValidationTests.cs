using Cllm.Decoding;
using Cllm.Model;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>Requests with a bad option: refused naming the option and value, or (tiny temperatures) run greedy.</summary>
public sealed class GenerationOptionsValidationTests
{
    public static TheoryData<string, string> BadOptions()
    {
        var data = new TheoryData<string, string>
        {
            { "Decoder", "42" }, { "Decoder", "-1" }, { "Decoder", "3" }, { "InitialGuess", "9" }, { "InitialGuess", "-2" },
        };
        foreach (var v in new[] { "0", "-1", "-256", "int.MinValue" }) data.Add("MaxNewTokens", v);
        foreach (var v in new[] { "0", "1", "-16", "257", "100000", "int.MaxValue" }) data.Add("BlockSize", v);
        foreach (var v in new[] { "-0.5", "-1e-38", "NaN", "Infinity", "-Infinity" }) data.Add("Temperature", v);
        foreach (var v in new[] { "0", "-0.1", "1.0001", "NaN", "Infinity" }) data.Add("TopP", v);
        foreach (var v in new[] { "-1", "int.MinValue" }) data.Add("TopK", v);
        foreach (var v in new[] { "0", "1", "33", "-4" }) data.Add("NgramSize", v);
        foreach (var v in new[] { "0", "65", "-1" }) data.Add("NgramsPerKey", v);
        foreach (var v in new[] { "-1", "int.MinValue" }) data.Add("StopTokenIds", v);
        return data;
    }

    static int Int(string v) => v switch { "int.MinValue" => int.MinValue, "int.MaxValue" => int.MaxValue, _ => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) };

    static float Float(string v) => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void ABadOptionIsRefusedNamingItAndTheValue(string option, string value)
    {
        var o = new GenerationOptions();
        o = option switch
        {
            "Decoder" => o with { Decoder = (DecoderKind)Int(value) },
            "InitialGuess" => o with { InitialGuess = (JacobiGuess)Int(value) },
            "MaxNewTokens" => o with { MaxNewTokens = Int(value) },
            "BlockSize" => o with { BlockSize = Int(value) },
            "Temperature" => o with { Temperature = Float(value) },
            "TopP" => o with { TopP = Float(value) },
            "TopK" => o with { TopK = Int(value) },
            "NgramSize" => o with { NgramSize = Int(value) },
            "NgramsPerKey" => o with { NgramsPerKey = Int(value) },
            "StopTokenIds" => o with { StopTokenIds = [2, Int(value)] },
            _ => throw new ArgumentException(option),
        };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => o.Validate());
        Assert.Equal(option, e.ParamName);
        Assert.Contains(option, e.Message);
        string shown = value switch { "int.MinValue" => int.MinValue.ToString(), "int.MaxValue" => int.MaxValue.ToString(), _ => "" };
        if (option is "Decoder" or "InitialGuess")
            Assert.Contains($"{option} {Int(value)} is not a", e.Message);
        else if (shown != "")
            Assert.Contains(shown, e.Message);
    }

    [Theory]
    [InlineData(1e-38f)]
    [InlineData(1e-30f)]
    [InlineData(1e-45f)]
    [InlineData(1e-20f)]
    public void TemperaturesTooSmallToDivideByGiveGreedy(float temperature)
    {
        using var model = TestModels.Create("mha", 11);
        using var cache = new KvCache(model.Config, 256, model.DType, model.Device);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 12, 3);
        foreach (var decoder in new[] { DecoderKind.Autoregressive, DecoderKind.Jacobi, DecoderKind.Lookahead })
        {
            var greedy = TestModels.Generate(model, cache, prompt, new GenerationOptions { Decoder = decoder, MaxNewTokens = 24 }, out _);
            var tiny = TestModels.Generate(model, cache, prompt,
                new GenerationOptions { Decoder = decoder, MaxNewTokens = 24, Temperature = temperature, Seed = 5 }, out _);
            Assert.Equal(greedy, tiny);
        }
    }
}
