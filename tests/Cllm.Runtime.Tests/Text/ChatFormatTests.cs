using Cllm.Text;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Training.Data;

public sealed class ChatFormatTests
{
    static readonly ToolCall TrickyCall = new("run_sql", new Dictionary<string, object?>
    {
        ["query"] = "SELECT name FROM customers WHERE city = 'Oslo' -- \"quoted\" </tool_call> \\ ünïcode",
        ["limit"] = 5,
        ["ratio"] = 0.25,
        ["strict"] = true,
        ["note"] = null,
    });

    [Fact]
    public void RendersTheDocumentedLayout()
    {
        ChatTurn[] turns =
        [
            new("system", "Be brief."),
            new("user", "Status of order 7?"),
            new("assistant", "", new ToolCall("get_order_status", new Dictionary<string, object?> { ["order_id"] = 7 })),
            new("tool", "{\"order_id\":7,\"status\":\"shipped\"}"),
            new("assistant", "Order 7 is shipped."),
        ];
        string text = CllmChatFormat.Render(turns, [DemoTools.GetOrderStatus], addGenerationPrompt: false);
        Assert.Equal(
            "<|system|>\nBe brief.\nTools:\nget_order_status: Get an order's status. {\"order_id\":\"integer\"}<|end|>\n" +
            "<|user|>\nStatus of order 7?<|end|>\n" +
            "<|assistant|>\n<tool_call>{\"name\":\"get_order_status\",\"arguments\":{\"order_id\":7}}</tool_call><|end|>\n" +
            "<|tool|>\n{\"order_id\":7,\"status\":\"shipped\"}<|end|>\n" +
            "<|assistant|>\nOrder 7 is shipped.<|end|>\n",
            text);
        Assert.EndsWith("<|end|>\n<|assistant|>\n", CllmChatFormat.Render(turns[..4], [DemoTools.GetOrderStatus], addGenerationPrompt: true));
    }

    [Fact]
    public void ToolsWithoutASystemTurnGetOneAndOptionalParametersAreMarked()
    {
        var tool = new ToolDefinition("f", "Does f.", [new("x", "integer", "x"), new("y", "string", "y", Required: false)]);
        string text = CllmChatFormat.Render([new("user", "hi")], [tool], addGenerationPrompt: true);
        Assert.Equal("<|system|>\nTools:\nf: Does f. {\"x\":\"integer\",\"y\":\"string?\"}<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n", text);
        Assert.Equal("<|user|>\nhi<|end|>\n", CllmChatFormat.Render([new("user", "hi")], null, addGenerationPrompt: false));
        Assert.Throws<ArgumentException>(() => CllmChatFormat.Render([new("bot", "hi")], null, false));
    }

    [Fact]
    public void ToolRoundTripSplitsIntoTwoExamplesAndTheCallParsesBackExactly()
    {
        ChatTurn[] turns = [new("user", "q"), new("assistant", "", TrickyCall), new("tool", "[[1]]"), new("assistant", "One.")];
        var pairs = CllmChatFormat.RenderForTraining(turns, DemoTools.All);
        Assert.Equal(2, pairs.Count);
        string full = CllmChatFormat.Render(turns, DemoTools.All, addGenerationPrompt: false);
        foreach (var (prompt, completion) in pairs)
        {
            Assert.EndsWith("<|assistant|>\n", prompt);
            Assert.EndsWith("<|end|>", completion);
            Assert.StartsWith(prompt + completion + "\n", full); // the pairs are exact slices of the rendering
        }

        Assert.Equal("One.<|end|>", pairs[1].Completion);
        var parsed = CllmChatFormat.ParseToolCall(pairs[0].Completion);
        Assert.NotNull(parsed);
        Assert.Equal(TrickyCall, parsed);
        Assert.Equal("run_sql", parsed.Name);
        Assert.Equal(TrickyCall.Arguments["query"], parsed.Arguments["query"]);
        Assert.Equal(5L, parsed.Arguments["limit"]);
        Assert.Equal(0.25, parsed.Arguments["ratio"]);
        Assert.Equal(true, parsed.Arguments["strict"]);
        Assert.Null(parsed.Arguments["note"]);
        Assert.Contains("'Oslo'", pairs[0].Completion); // SQL quotes stay readable, not \u0027
    }

    [Theory]
    [InlineData("<tool_call>{\"name\":\"calculate\",\"arguments\":{\"expression\":\"1 + 2\"}}</tool_call>")]
    [InlineData("Let me check. <tool_call> {\"name\":\"calculate\",\"arguments\":{\"expression\":\"1 + 2\"}}\n</tool_call><|end|>")]
    [InlineData("<tool_call>{\"name\":\"calculate\",\"arguments\":{\"expression\":\"1 + 2\"}}")] // cut off before the close marker
    [InlineData("<tool_call>{\"name\":\"calculate\",\"arguments\":{\"expression\":\"1 + 2\"}}<|end|>")]
    [InlineData("<tool_call>{\"arguments\":\"{\\\"expression\\\":\\\"1 + 2\\\"}\",\"name\":\"calculate\"}</tool_call>")] // OpenAI-style string arguments
    public void LenientParsingAcceptsHarmlessVariations(string text)
    {
        var expected = new ToolCall("calculate", new Dictionary<string, object?> { ["expression"] = "1 + 2" });
        Assert.Equal(expected, CllmChatFormat.ParseToolCall(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("The answer is 4.")]
    [InlineData("<tool_call>")]
    [InlineData("<tool_call>{\"name\":\"calculate\",\"arguments\":{\"expression\":\"1 + 2\"}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"calculate\" \"arguments\":{}}</tool_call>")]
    [InlineData("<tool_call>{'name':'calculate'}</tool_call>")]
    [InlineData("<tool_call>[\"calculate\"]</tool_call>")]
    [InlineData("<tool_call>{\"name\":42}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"\"}</tool_call>")]
    [InlineData("<tool_call>{\"arguments\":{}}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\",\"arguments\":[1,2]}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1,\"x\":2}}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\",\"arguments\":\"{not json\"}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1e999}}</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\"} and then some text</tool_call>")]
    [InlineData("<tool_call>{\"name\":\"f\"}{\"name\":\"g\"}</tool_call>")]
    public void MalformedToolCallsGiveNull(string text) => Assert.Null(CllmChatFormat.ParseToolCall(text));

    [Fact]
    public void ToolCallEqualityIsByContentNotReference()
    {
        var a = new ToolCall("f", new Dictionary<string, object?> { ["n"] = 3 });
        Assert.Equal(a, new ToolCall("f", new Dictionary<string, object?> { ["n"] = 3L }));
        Assert.NotEqual(a, new ToolCall("f", new Dictionary<string, object?> { ["n"] = 4 }));
        Assert.NotEqual(a, new ToolCall("g", new Dictionary<string, object?> { ["n"] = 3 }));
        Assert.Equal(a.GetHashCode(), new ToolCall("f", new Dictionary<string, object?> { ["n"] = 3L }).GetHashCode());
    }
}
