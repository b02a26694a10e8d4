using System.Text.Json.Nodes;
using Cllm.Text;
using Cllm.Text.Templates;
using Xunit;

namespace Cllm.Tests.Text.Templates;

/// <summary>Real chat templates of eight families against the prompts the references rendered from them.</summary>
public sealed class ChatTemplateFamilyTests
{
    public static TheoryData<string> Families => [.. TemplateFixtures.Families];

    [Theory]
    [MemberData(nameof(Families))]
    public void RendersEveryConversationAsTheReferenceDoes(string family)
    {
        var format = TemplateChatFormat.FromModelDirectory(TemplateFixtures.FamilyFolder(family))!.WithClock(() => TemplateFixtures.Clock);
        var expected = TemplateFixtures.Expected[family]!.AsObject();
        var failures = new List<string>();
        foreach (var node in TemplateFixtures.Conversations)
        {
            var conversation = node!.AsObject();
            string name = conversation["name"]!.GetValue<string>();
            string? js = TemplateFixtures.Text(expected[name]);
            string? python = TemplateFixtures.Text(expected[name]!["jinja2"]);
            string? ours, error = null;
            try
            {
                ours = Render(format, conversation);
            }
            catch (TemplateException e)
            {
                ours = null;
                error = e.Message;
            }

            // Where the references agree, byte for byte; where they differ (one raised), ours must be one of them.
            bool ok = js == python ? ours == js : ours == js || ours == python;
            if (!ok) failures.Add($"{name}: {Difference(js ?? python, ours, error)}");
        }

        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    internal static string Render(TemplateChatFormat format, JsonObject conversation)
    {
        var extra = new JsonObject();
        foreach (var (key, value) in conversation)
        {
            if (key is not ("name" or "messages" or "tools" or "documents" or "add_generation_prompt")) extra[key] = value?.DeepClone();
        }

        return format.RenderMessages(conversation["messages"]!.AsArray(), conversation["tools"]?.AsArray(),
            conversation["add_generation_prompt"]?.GetValue<bool>() ?? false, conversation["documents"]?.AsArray(), extra);
    }

    // Where the texts part, with some context (whole prompts are too long to read in a failure).
    static string Difference(string? expected, string? ours, string? error)
    {
        if (expected is null) return $"the references raised, ours gave {Show(ours)}";
        if (ours is null) return $"expected {Show(expected)}, ours raised: {error}";
        int at = 0;
        while (at < Math.Min(expected.Length, ours.Length) && expected[at] == ours[at]) at++;
        int from = Math.Max(0, at - 60);
        return $"differs at {at}: expected {Show(expected[from..Math.Min(expected.Length, at + 60)])}, " +
            $"got {Show(ours[from..Math.Min(ours.Length, at + 60)])}";
    }

    static string Show(string? text) => text is null ? "an error" : "\"" + text.Replace("\n", "\\n") + "\"";

    [Theory]
    [InlineData("qwen2_5", "<tool_call>")]
    [InlineData("qwen3", "<tool_call>")]
    [InlineData("mistral_nemo", "[TOOL_CALLS]")]
    [InlineData("llama3_2", "{\"name\"")]
    public void ReadsBackTheToolCallTheTemplateWrote(string family, string start)
    {
        var format = TemplateChatFormat.FromModelDirectory(TemplateFixtures.FamilyFolder(family))!;
        Assert.Equal(start, format.ToolCallStart);
        var conversation = TemplateFixtures.Conversation("tool_call_then_answer");
        var call = conversation["messages"]![1]!["tool_calls"]![0]!["function"]!;
        string rendered = TemplateFixtures.Text(TemplateFixtures.Expected[family]!["tool_call_then_answer"])!;

        // The assistant's call as the reference wrote it: from the call marker to the end of that turn.
        int at = rendered.IndexOf(start, rendered.IndexOf("What's the weather in Paris?", StringComparison.Ordinal), StringComparison.Ordinal);
        int end = format.StopTexts.Select(s => rendered.IndexOf(s, at, StringComparison.Ordinal)).Where(i => i >= 0).Min();
        var calls = format.ParseToolCalls(rendered[at..end]);

        // What a forced call starts with is how the template writes calls (named or not).
        Assert.StartsWith(format.ForcedToolCallPrefix(call["name"]!.GetValue<string>()), rendered[at..], StringComparison.Ordinal);
        Assert.StartsWith(format.ForcedToolCallPrefix(null), rendered[at..], StringComparison.Ordinal);

        Assert.NotNull(calls);
        var parsed = Assert.Single(calls);
        Assert.Equal(call["name"]!.GetValue<string>(), parsed.Name);
        Assert.Equal(call["arguments"]!.AsObject().Select(p => (p.Key, (object?)p.Value!.GetValue<string>())),
            parsed.Arguments.Select(p => (p.Key, p.Value)));
        Assert.Null(format.ParseToolCalls(start + "{\"name\": "));
    }

    [Theory]
    [InlineData("qwen2_5", "tool_call_then_answer")]
    [InlineData("qwen2_5", "parallel_tool_calls")]
    [InlineData("mistral_nemo", "multi_turn")]
    public void AFolderWithATemplateIsRenderedByItAndTheTurnsMapToMessages(string family, string name)
    {
        string dir = TemplateFixtures.FamilyFolder(family);
        var format = Assert.IsType<TemplateChatFormat>(ChatFormats.Detect(dir, Cllm.Model.ModelConfig.Preset("tiny")));
        var conversation = TemplateFixtures.Conversation(name);

        // The engine's turns carry one call each; consecutive calls become one message again.
        var turns = new List<ChatTurn>();
        foreach (var message in conversation["messages"]!.AsArray())
        {
            string role = message!["role"]!.GetValue<string>(), content = message["content"]?.GetValue<string>() ?? "";
            var calls = message["tool_calls"]?.AsArray().Select(c => c!["function"]!).ToList() ?? [];
            if (calls.Count == 0) turns.Add(new ChatTurn(role, content));
            for (int i = 0; i < calls.Count; i++)
            {
                var arguments = calls[i]["arguments"]!.AsObject().ToDictionary(p => p.Key, p => (object?)p.Value!.GetValue<string>());
                turns.Add(new ChatTurn(role, i == 0 ? content : "", new ToolCall(calls[i]["name"]!.GetValue<string>(), arguments)));
            }
        }

        var tools = conversation["tools"]?.AsArray().Select(t => t!["function"]!).Select(f => new ToolDefinition(f["name"]!.GetValue<string>(),
            f["description"]!.GetValue<string>(), [.. f["parameters"]!["properties"]!.AsObject().Select(p => new ToolParameter(p.Key,
                p.Value!["type"]!.GetValue<string>(), p.Value!["description"]!.GetValue<string>(),
                f["parameters"]!["required"]!.AsArray().Any(r => r!.GetValue<string>() == p.Key)))])).ToList();

        // The reference's text from the first user turn on (ours lists tools without "enum", and gives calls its own ids).
        string ours = format.Render(turns, tools, conversation["add_generation_prompt"]!.GetValue<bool>());
        string reference = TemplateFixtures.Text(TemplateFixtures.Expected[family]![name])!;
        string from = conversation["messages"]!.AsArray().First(m => m!["role"]!.GetValue<string>() == "user")!["content"]!.GetValue<string>();
        Assert.Equal(reference[reference.IndexOf(from, StringComparison.Ordinal)..], ours[ours.IndexOf(from, StringComparison.Ordinal)..]);
        Assert.Contains(format.SpecialTokens["eos_token"], format.StopTexts);
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("deepseek_v3")]
    [InlineData("qwen2_5")]
    public void RenderIsTheWholePromptWithTheBosTheTemplateWrites(string family)
    {
        var format = TemplateChatFormat.FromModelDirectory(TemplateFixtures.FamilyFolder(family))!;
        var messages = TemplateFixtures.Conversation("system_user")["messages"]!.AsArray();
        string reference = TemplateFixtures.Text(TemplateFixtures.Expected[family]!["system_user"])!;
        var turns = messages.Select(m => new ChatTurn(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();

        Assert.True(format.RendersBos);
        Assert.Equal(reference, format.Render(turns, null, addGenerationPrompt: true));
        if (format.SpecialTokens.TryGetValue("bos_token", out var bos)) Assert.StartsWith(bos, reference, StringComparison.Ordinal);
    }
}
