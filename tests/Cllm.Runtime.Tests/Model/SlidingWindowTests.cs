using Cllm.Model;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Model;

/// <summary>
/// Sliding-window attention past the window (Mistral and Phi-3: every layer; Gemma 2 and 3: alternate layers), against
/// <see cref="ReferenceDecoder"/> (float64, query by query from Hugging Face's definition). llama.cpp cannot be the
/// oracle here: its "llama" architecture, which Mistral is exported as, reads no sliding window and attends to every
/// earlier key, and its "phi3" turns Phi-3's window off; Cllm follows Hugging Face, which applies both.
/// </summary>
public sealed class SlidingWindowTests
{
    [Theory]
    [InlineData("mistral-window")]
    [InlineData("phi3-window")]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void LogitsPastTheWindowMatchTheReference(string shape)
    {
        using var model = TestModels.Create(shape, seed: 21);
        var window = model.Config.SlidingWindow!.Value;
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 5 * window, seed: 4);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var expected = ReferenceDecoder.Logits(model, prompt);
        var ours = FullPass(model, prompt).to(float64);
        var diff = (ours - expected).abs().max().item<double>();
        Assert.True(diff < 1e-4, $"{shape}: max |ours - reference| = {diff}");

        // The window must matter: the same weights attending to every key (a window longer than the prompt, so Gemma 3's
        // sliding layers keep their local RoPE) give other logits once past it, and the same logits within it.
        using var full = new Transformer(model.Config with { SlidingWindow = 1 << 20 });
        full.load_state_dict(model.state_dict());
        full.eval();
        var unwindowed = FullPass(full, prompt).to(float64);
        Assert.True((unwindowed - expected).narrow(0, 0, window).abs().max().item<double>() < 1e-4);
        Assert.True((unwindowed - expected).narrow(0, window, prompt.Length - window).abs().max().item<double>() > 0.01);
    }

    [Fact]
    public void TrainingPassMasksLikeTheInferencePass()
    {
        using var model = TestModels.Create("mistral-window", seed: 22);
        var prompt = TestModels.RandomPrompt(model.Config.VocabSize, 30, seed: 6);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var expected = ReferenceDecoder.Logits(model, prompt);
        var training = model.ForwardTraining(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0))[0].to(float64);
        Assert.True((training - expected).abs().max().item<double>() < 1e-4);
    }

    [Fact]
    public void Qwen2SlidesEveryLayerOrNoneByMaxWindowLayers()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse((ModelConfig.Preset("tiny-qwen2") with { SlidingWindow = 8 }).ToJson())!.AsObject();
        Assert.Equal(8, ModelConfig.FromJson(json).SlidingWindow); // written with max_window_layers 0: every layer slides
        json["max_window_layers"] = System.Text.Json.Nodes.JsonNode.Parse("28"); // Hugging Face's default: layers 28 and up slide, none of these two
        Assert.Null(ModelConfig.FromJson(json).SlidingWindow);
        json["max_window_layers"] = System.Text.Json.Nodes.JsonNode.Parse("1");
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.FromJson(json, "q/config.json"));
        Assert.Contains("max_window_layers", e.Message);
        Assert.Contains("q/config.json", e.Message);
    }

    static Tensor FullPass(Transformer model, int[] prompt)
    {
        using var cache = new KvCache(model.Config, prompt.Length, model.DType, model.Device);
        return model.Forward(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0), 0, cache)[0];
    }
}
