using System.Text.Json.Nodes;
using Xunit;

namespace Cllm.Cli.Tests;

/// <summary>`cllm render` on real chat templates, against the prompts transformers.js rendered from them.</summary>
public sealed class RenderCommandTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("cllm-render-tests-").FullName;

    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures", "templates");

    public void Dispose()
    {
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
    }

    static (int Code, string Out, string Err) Cllm(params string[] args) => CllmProcess.Run(args);

    [Fact]
    public void PrintsTheModelsOwnTemplateAsTheReferenceRendersIt()
    {
        var conversation = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "conversations.json")))!.AsArray()
            .Single(c => c!["name"]!.GetValue<string>() == "tool_call_round_trip")!;
        string messages = Path.Combine(_folder, "messages.json"), tools = Path.Combine(_folder, "tools.json");
        File.WriteAllText(messages, conversation["messages"]!.ToJsonString());
        File.WriteAllText(tools, conversation["tools"]!.ToJsonString());
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "expected.json")))!;

        foreach (var family in new[] { "qwen2_5", "mistral_nemo" })
        {
            var (code, output, err) = Cllm("render", "--model", Path.Combine(Fixtures, family), "--messages", messages, "--tools", tools,
                "--add-generation-prompt");
            Assert.True(code == 0, err);
            Assert.Equal(expected[family]!["tool_call_round_trip"]!["text"]!.GetValue<string>(), output);
        }

        // A named format replaces the template: ChatML's own layout, which starts with the system turn.
        var (named, chatml, namedErr) = Cllm("render", "--model", Path.Combine(Fixtures, "qwen2_5"), "--messages", messages, "--format", "chatml");
        Assert.True(named == 0, namedErr);
        Assert.StartsWith("<|im_start|>system\nYou can call tools.<|im_end|>", chatml);
    }

    [Fact]
    public void AMalformedTemplateIsOneLineWithItsPosition()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"),
            new JsonObject { ["chat_template"] = "{% for m in messages %}\n{{ m.content + }}{% endfor %}" }.ToJsonString());
        string messages = Path.Combine(_folder, "messages.json");
        File.WriteAllText(messages, "[{\"role\": \"user\", \"content\": \"hi\"}]");
        var (code, _, err) = Cllm("render", "--model", _folder, "--messages", messages);
        Assert.Equal(1, code);
        Assert.StartsWith("cllm: ", err);
        Assert.Contains("tokenizer_config.json", err);
        Assert.Contains("line 2, column", err);
    }
}
