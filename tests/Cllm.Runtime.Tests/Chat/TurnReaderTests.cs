using System.Text.Json;
using Cllm.Chat;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Chat;

/// <summary>The turn reader on real token ids of the default model's tokenizer, fed in chunks of every size.</summary>
public sealed class TurnReaderTests
{
    static readonly ToolDefinition Plan = ToolDefinition.FromJsonSchema("plan_trip", "Plans a trip.", JsonDocument.Parse("""
        {"type":"object","properties":{
          "cities":{"type":"array","items":{"type":"string"},"description":"Stops in order."},
          "budget":{"type":"object","properties":{"amount":{"type":"number"},"currency":{"type":"string","enum":["EUR","USD"]}}},
          "mode":{"type":"string","enum":["train","car"]},
          "nights":{"type":"integer","description":"Nights in all."},
          "note":{"type":["string","null"]}},
         "required":["cities","mode","nights"]}
        """).RootElement);

    static readonly ToolDefinition Weather = new("get_weather", "Gets weather.", [new("city", "string", "The city.")]);

    static (TextTokenizer Tokenizer, PreparedTurn Turn) Prepare(ChatTurnRequest request, params string[] stops)
    {
        var (tokenizer, format) = ChatTokenizers.Get("cllm");
        return (tokenizer, PreparedTurn.Create(format, tokenizer, [tokenizer.TokenToId(CllmChatFormat.End)!.Value], request, stops));
    }

    // What the model would generate: the text's ids (markers as their ids) and the end-of-turn id.
    static int[] Generated(TextTokenizer tokenizer, string text) => [.. tokenizer.Encode(text, addSpecial: false), tokenizer.TokenToId(CllmChatFormat.End)!.Value];

    static (string Shown, TurnResult Result) Read(PreparedTurn turn, int[] ids, int chunk)
    {
        var reader = turn.CreateReader();
        string shown = "";
        for (int i = 0; i < ids.Length && !reader.Ended; i += chunk)
            shown += reader.Push(ids[i..Math.Min(ids.Length, i + chunk)]);
        var result = reader.Finish();
        return (shown + result.Text, result);
    }

    [Fact]
    public void CallsWithArraysObjectsEnumsAndNestedValuesParse()
    {
        var (tokenizer, turn) = Prepare(new ChatTurnRequest { Turns = [new("user", "Plan it.")], Tools = [Plan, Weather] });
        string text = "Sure.<tool_call>{\"name\":\"plan_trip\",\"arguments\":{\"cities\":[\"Oslo\",\"Bergen\"]," +
            "\"budget\":{\"amount\":1200.5,\"currency\":\"EUR\"},\"mode\":\"train\",\"nights\":4,\"note\":null}}</tool_call>" +
            "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>";
        int[] ids = Generated(tokenizer, text);
        foreach (int chunk in new[] { 1, 2, 3, 7, ids.Length })
        {
            var (shown, result) = Read(turn, ids, chunk);
            Assert.Equal("Sure.", shown);
            Assert.Null(result.MalformedToolCall);
            Assert.Equal(["plan_trip", "get_weather"], result.ToolCalls.Select(c => c.Name));
            var args = result.ToolCalls[0].Arguments;
            Assert.Equal(["Oslo", "Bergen"], ((JsonElement)args["cities"]!).EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(1200.5, ((JsonElement)args["budget"]!).GetProperty("amount").GetDouble());
            Assert.Equal("EUR", ((JsonElement)args["budget"]!).GetProperty("currency").GetString());
            Assert.Equal(("train", 4L), ((string)args["mode"]!, (long)args["nights"]!));
            Assert.True(args.ContainsKey("note") && args["note"] is null);
        }

        // One call kept when the caller allows only one.
        var (_, single) = Prepare(new ChatTurnRequest { Turns = [new("user", "x")], Tools = [Plan, Weather], AllowMultipleToolCalls = false });
        Assert.Single(Read(single, ids, 4).Result.ToolCalls);
    }

    [Fact]
    public void StopTextsAreHeldBackAcrossTokensAndNeverShown()
    {
        var (tokenizer, turn) = Prepare(new ChatTurnRequest { Turns = [new("user", "x")] }, "STOP here");
        string text = "The answer is forty-two. STOP here and more text";
        int[] ids = Generated(tokenizer, text);
        foreach (int chunk in new[] { 1, 2, 5, ids.Length })
        {
            var reader = turn.CreateReader();
            string shown = "";
            for (int i = 0; i < ids.Length && !reader.Ended; i += chunk)
            {
                shown += reader.Push(ids[i..Math.Min(ids.Length, i + chunk)]);
                Assert.DoesNotContain("STOP", shown);
            }

            Assert.True(reader.Ended);
            Assert.Equal("The answer is forty-two. ", shown + reader.Finish().Text);
        }

        // A new turn's marker the model writes instead of ending is a stop too; the end id is not text.
        Assert.Equal("Hi.", Read(turn, Generated(tokenizer, "Hi.<|user|>\nmore"), 1).Shown);
        Assert.Equal("Hi.", Read(turn, Generated(tokenizer, "Hi."), 1).Shown);
    }

    [Fact]
    public void AMalformedCallIsTextAndAModelsNameIsMatchedToAnOfferedTool()
    {
        var (tokenizer, turn) = Prepare(new ChatTurnRequest { Turns = [new("user", "x")], Tools = [Weather] });
        var (shown, result) = Read(turn, Generated(tokenizer, "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":"), 3);
        Assert.Empty(result.ToolCalls);
        Assert.StartsWith("<tool_call>", result.MalformedToolCall);
        Assert.Equal(result.MalformedToolCall, shown);

        var named = Read(turn, Generated(tokenizer, "<tool_call>{\"name\":\"Weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>"), 2);
        Assert.Equal("get_weather", Assert.Single(named.Result.ToolCalls).Name);
    }

    [Fact]
    public void ANameWithoutItsPluginPrefixIsMatchedOnlyAfterASeparatorAndOnlyWhenUnambiguous()
    {
        ToolDefinition Tool(string name) => new(name, "A tool.", [new("id", "integer", "An id.")]);
        var (tokenizer, turn) = Prepare(new ChatTurnRequest
        {
            Turns = [new("user", "x")],
            Tools = [Tool("store.lookup_order"), Tool("store-ship"), Tool("Store_Refund"), Tool("xcancel"), Tool("a.find"), Tool("b.find")],
        });
        string Called(string name) => Assert.Single(Read(turn, Generated(tokenizer,
            "<tool_call>{\"name\":\"" + name + "\",\"arguments\":{\"id\":1}}</tool_call>"), 3).Result.ToolCalls).Name;

        Assert.Equal("store.lookup_order", Called("lookup_order")); // after '.'
        Assert.Equal("store-ship", Called("ship")); // after '-'
        Assert.Equal("Store_Refund", Called("refund")); // after '_', ignoring case
        Assert.Equal("store.lookup_order", Called("STORE.LOOKUP_ORDER")); // the whole name, ignoring case
        Assert.Equal("cancel", Called("cancel")); // 'x' is no separator: the unknown name stays for the caller to report
        Assert.Equal("find", Called("find")); // two tools end so: neither is guessed
        Assert.Equal("a.find", Called("a.find"));
    }

    [Fact]
    public void AForcedCallContinuesFromItsPrefix()
    {
        var (tokenizer, turn) = Prepare(new ChatTurnRequest { Turns = [new("user", "x")], Tools = [Weather, Plan], ToolChoice = ToolChoice.Tool("get_weather") });
        // The opening tag is forced and the rest is left to the grammar (which only allows get_weather here).
        Assert.EndsWith("<tool_call>", turn.Prompt.Text);
        const string call = "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>";
        Assert.True(turn.Constraint!.Accepts(call));
        Assert.False(turn.Constraint.Accepts(call.Replace("get_weather", "plan", StringComparison.Ordinal)));
        var (_, result) = Read(turn, Generated(tokenizer, call), 2);
        Assert.Equal(new ToolCall("get_weather", new Dictionary<string, object?> { ["city"] = "Oslo" }), Assert.Single(result.ToolCalls));
    }

    [Fact]
    public void AJsonAnswerEndsWithItsFirstCompleteValue()
    {
        var scanner = new JsonValueScanner();
        Assert.Equal(-1, scanner.Feed(" {\"a\": \"}"));   // a brace inside a string does not close
        Assert.Equal(-1, scanner.Feed("x\\\"}\", \"b\": [1, {\"c\""));
        Assert.Equal(6, scanner.Feed(": 2}]} and then some"));
        Assert.Equal(-1, new JsonValueScanner().Feed("plain text }"));

        var (tokenizer, turn) = Prepare(new ChatTurnRequest { Turns = [new("user", "x")], JsonOutput = true });
        var valid = Read(turn, Generated(tokenizer, "{\"a\":[1,2]} trailing words"), 2);
        Assert.Equal("{\"a\":[1,2]}", valid.Shown);
        Assert.Null(valid.Result.JsonError);
        Assert.NotNull(Read(turn, Generated(tokenizer, "{\"a\": oops"), 2).Result.JsonError);
        Assert.Null(Read(Prepare(new ChatTurnRequest { Turns = [new("user", "x")] }).Turn, Generated(tokenizer, "not json"), 2).Result.JsonError);
    }

    [Fact]
    public void ToolSchemasReachThePromptWhole()
    {
        Assert.Equal("{\"cities\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"Stops in order.\"}," +
            "\"budget\":{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"},\"currency\":{\"type\":\"string\",\"enum\":[\"EUR\",\"USD\"]}}}," +
            "\"mode\":{\"type\":\"string\",\"enum\":[\"train\",\"car\"]},\"nights\":\"integer\",\"note\":\"string?\"}", Plan.CompactSchema());
        Assert.Contains(Plan.CompactSchema(), ChatFormats.Cllm.Render([new("user", "x")], [Plan], true));
        // ChatML lists the whole parameters schema, descriptions included.
        Assert.Contains("\"parameters\":" + Plan.ParametersJsonSchema(), ChatFormats.ChatMl.Render([new("user", "x")], [Plan], true));
        Assert.Contains("\"nights\":{\"type\":\"integer\",\"description\":\"Nights in all.\"}", Plan.ParametersJsonSchema());
        // Flat scalar tools keep the short form the default model was trained on.
        Assert.Equal("{\"city\":\"string\"}", Weather.CompactSchema());
        Assert.Throws<ArgumentException>(() => ToolDefinition.FromJsonSchema("t", "", JsonDocument.Parse("{\"required\":[1]}").RootElement));
    }
}
