using System.Text.Json.Nodes;
using Cllm.Text;
using Microsoft.Extensions.AI;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>A model folder with its own chat template: the client renders with it and encodes it as transformers does.</summary>
public sealed class TemplateClientTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("cllm-template-client-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
    }

    [Fact]
    public async Task TheFoldersTemplateIsRenderedAndItsBosIsNotDoubled()
    {
        // The random test model with Llama-2-chat's real template (its tokenizer's BOS is <s> too).
        foreach (var file in Directory.GetFiles(TestModels.Random)) File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        string configPath = Path.Combine(_folder, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "templates");
        var llama2 = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "llama2", "tokenizer_config.json")))!;
        config["chat_template"] = llama2["chat_template"]!.DeepClone();
        File.WriteAllText(configPath, config.ToJsonString());
        var messages = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "conversations.json")))!.AsArray()
            .Single(c => c!["name"]!.GetValue<string>() == "system_user")!["messages"]!.AsArray()
            .Select(m => (Role: m!["role"]!.GetValue<string>(), Text: m["content"]!.GetValue<string>())).ToList();
        string reference = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtures, "expected.json")))!["llama2"]!["system_user"]!["text"]!
            .GetValue<string>();

        using var client = new CllmChatClient(new CllmChatClientOptions { ModelPath = _folder, Defaults = new() { MaxNewTokens = 3 } });
        var format = Assert.IsType<TemplateChatFormat>(client.ChatFormat);
        var response = await client.GetResponseAsync([.. messages.Select(m => new ChatMessage(new ChatRole(m.Role), m.Text))]);

        // The prompt is the reference's, and it is encoded as apply_chat_template encodes: no second BOS in front.
        string prompt = format.Render([.. messages.Select(m => new ChatTurn(m.Role, m.Text))], null, addGenerationPrompt: true);
        Assert.Equal(reference, prompt);
        int[] ids = client.Engine.Tokenizer.Encode(prompt, addSpecial: false);
        Assert.Equal(client.Engine.Tokenizer.BosId, ids[0]);
        Assert.NotEqual(client.Engine.Tokenizer.BosId, ids[1]);
        Assert.Equal(ids.Length, response.Usage!.InputTokenCount);
    }
}
