using System.Text;
using Cllm.Constraints;
using Xunit;

namespace Cllm.Tests.Constraints;

/// <summary>The character-level (byte-level) recogniser on its own: complete texts, prefixes, refusals.</summary>
public sealed class RecognizerTests
{
    static readonly TokenVocabulary Bytes = new([.. Enumerable.Range(0, 256).Select(b => new[] { (byte)b })]);

    static TokenConstraint Make(Grammar grammar) => TokenConstraint.Create(grammar, Bytes);

    const string Weather = """
        {"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},
         "days":{"type":"integer"}},"required":["city"],"additionalProperties":false}
        """;

    [Theory]
    [InlineData("{}")]
    [InlineData("[]")]
    [InlineData("0")]
    [InlineData("-12.5e+3")]
    [InlineData("\"a\\n\\u00e9\\\"\"")]
    [InlineData("true")]
    [InlineData("null")]
    [InlineData("{\"a\": [1, {\"b\": null}], \"c\": \"d\"}")]
    [InlineData("\"h\u00e9llo \u4e16\u754c \U0001F600\"")]
    public void AnyJsonAcceptsValidValues(string text) => Assert.True(Make(Grammar.Json()).Accepts(text), text);

    [Theory]
    [InlineData("{")]
    [InlineData("01")]
    [InlineData("1.")]
    [InlineData("-")]
    [InlineData("\"a")]
    [InlineData("\"\\x\"")]
    [InlineData("\"\\ud800\"")] // a lone surrogate escape
    [InlineData("{\"a\" :1}")] // Spaced: no space before ':'
    [InlineData("{\"a\":  1}")] // at most one space
    [InlineData("[1,]")]
    [InlineData("{\"a\": 1,}")]
    [InlineData("tru")]
    [InlineData("1 ")]
    [InlineData("\"tab\there\"")] // raw control character
    public void AnyJsonRefusesInvalidOrIncompleteText(string text) => Assert.False(Make(Grammar.Json()).Accepts(text), text);

    [Fact]
    public void InvalidUtf8IsRefusedByteByByte()
    {
        var json = Make(Grammar.Json());
        var state = json.Initial.Step((byte)'"')!;
        Assert.Null(state.Step(0xC0)); // overlong lead byte
        Assert.Null(state.Step(0x80)); // continuation without a lead
        Assert.Null(state.Step([0xE0, 0x80])); // overlong 3-byte form
        Assert.Null(state.Step([0xED, 0xA0])); // UTF-16 surrogate encoded in UTF-8
        var partial = state.Step([0xE4, 0xB8])!; // two bytes of "\u4e16": a token may end inside a character
        Assert.False(partial.Step((byte)'"') is not null, "a string cannot close inside a character");
        Assert.True(partial.Step([0x96, (byte)'"'])!.IsComplete);
    }

    [Fact]
    public void ObjectOnlyRefusesOtherValues()
    {
        var json = Make(Grammar.Json(objectOnly: true));
        Assert.True(json.Accepts("{\"x\": [true]}"));
        Assert.False(json.Accepts("[1]"));
        Assert.False(json.AcceptsPrefix("\""));
    }

    [Fact]
    public void WhitespacePolicies()
    {
        var compact = Make(Grammar.Json(whitespace: JsonWhitespace.Compact));
        Assert.True(compact.Accepts("{\"a\":[1,2]}"));
        Assert.False(compact.Accepts("{\"a\": [1,2]}"));
        var free = Make(Grammar.Json(whitespace: JsonWhitespace.Free));
        Assert.True(free.Accepts("{\n  \"a\" : [\n    1,\n    2\n  ]\n}"));
        Assert.False(free.Accepts("{" + new string(' ', 33) + "}"));
    }

    [Fact]
    public void SchemaObjectsKeepOrderRequiredAndDeclaredPropertiesOnly()
    {
        var weather = Make(Grammar.JsonSchema(Weather));
        Assert.True(weather.Accepts("{\"city\": \"Paris\"}"));
        Assert.True(weather.Accepts("{\"city\": \"Paris\", \"unit\": \"c\", \"days\": 3}"));
        Assert.True(weather.Accepts("{\"city\": \"Paris\", \"days\": -3}"));
        Assert.False(weather.Accepts("{}")); // city is required
        Assert.False(weather.Accepts("{\"unit\": \"c\", \"city\": \"Paris\"}")); // schema order
        Assert.False(weather.Accepts("{\"city\": \"Paris\", \"unit\": \"k\"}")); // enum
        Assert.False(weather.Accepts("{\"city\": \"Paris\", \"days\": 1.5}")); // integer
        Assert.False(weather.Accepts("{\"city\": \"Paris\", \"wind\": 1}")); // undeclared
        Assert.False(weather.Accepts("{\"city\": 3}"));
        Assert.False(weather.AcceptsPrefix("{\"cit\":"));
    }

    [Fact]
    public void TypeListsAnyOfOneOfConstAndArrays()
    {
        var schema = """
            {"type":"object","properties":{
              "note":{"type":["string","null"]},
              "value":{"anyOf":[{"type":"integer"},{"type":"boolean"}]},
              "op":{"const":"add"},
              "tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":2},
              "mode":{"oneOf":[{"enum":["a","b"]},{"type":"number"}]},
              "free":{"type":"object"}},
             "required":["note","value","op","tags","mode","free"]}
            """;
        var c = Make(Grammar.JsonSchema(schema));
        Assert.True(c.Accepts("{\"note\": null, \"value\": 7, \"op\": \"add\", \"tags\": [\"x\"], \"mode\": \"b\", \"free\": {\"k\": [1]}}"));
        Assert.True(c.Accepts("{\"note\": \"n\", \"value\": false, \"op\": \"add\", \"tags\": [\"x\", \"y\"], \"mode\": 2.5, \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": 1, \"value\": 7, \"op\": \"add\", \"tags\": [\"x\"], \"mode\": \"b\", \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": null, \"value\": \"7\", \"op\": \"add\", \"tags\": [\"x\"], \"mode\": \"b\", \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": null, \"value\": 7, \"op\": \"sub\", \"tags\": [\"x\"], \"mode\": \"b\", \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": null, \"value\": 7, \"op\": \"add\", \"tags\": [], \"mode\": \"b\", \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": null, \"value\": 7, \"op\": \"add\", \"tags\": [\"x\", \"y\", \"z\"], \"mode\": \"b\", \"free\": {}}"));
        Assert.False(c.Accepts("{\"note\": null, \"value\": 7, \"op\": \"add\", \"tags\": [\"x\"], \"mode\": \"c\", \"free\": {}}"));
    }

    [Fact]
    public void RecursiveReferences()
    {
        var tree = """
            {"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{
              "name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"]}}}
            """;
        var c = Make(Grammar.JsonSchema(tree));
        Assert.True(c.Accepts("{\"name\": \"a\", \"children\": [{\"name\": \"b\"}, {\"name\": \"c\", \"children\": []}]}"));
        Assert.False(c.Accepts("{\"name\": \"a\", \"children\": [{}]}"));
        Assert.Equal("{\"name\":\"\"}".Length, c.Initial.MinRemaining); // the space after the colon is optional
    }

    [Fact]
    public void ToolCallsNameAnOfferedToolAndMatchItsSchema()
    {
        var tools = new[] { new ToolSchema("get_weather", Weather), new ToolSchema("get_time", null) };
        var c = Make(Grammar.ToolCall(tools));
        Assert.True(c.Accepts("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"));
        Assert.True(c.Accepts("<tool_call>{\"name\": \"get_time\", \"arguments\": {\"zone\": [1]}}</tool_call>"));
        Assert.False(c.Accepts("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"zone\": 1}}</tool_call>"));
        Assert.False(c.Accepts("<tool_call>{\"name\": \"get_date\", \"arguments\": {}}</tool_call>"));
        Assert.False(c.AcceptsPrefix("<tool_call>{\"name\": \"get_d"));
        Assert.False(c.AcceptsPrefix("Sure"));
        var done = c.Initial.Step(Encoding.UTF8.GetBytes("<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>"))!;
        Assert.True(done.IsComplete);
        Assert.False(done.CanContinue);
    }

    [Fact]
    public void SequencesOfLiteralAndNumberEndWhereTheLiteralStarts()
    {
        var c = Make(Grammar.Sequence(Grammar.Literal("n="), Grammar.JsonSchema("""{"type":"integer"}"""), Grammar.Literal("5;")));
        Assert.True(c.Accepts("n=125;")); // the number may end before a literal that starts with a digit
        Assert.True(c.Accepts("n=-35;"));
        Assert.False(c.Accepts("n=5;"));
        var number = Make(Grammar.JsonSchema("""{"type":"number"}"""));
        var twelve = number.Initial.Step(Encoding.UTF8.GetBytes("12"))!;
        Assert.True(twelve.IsComplete);
        Assert.True(twelve.CanContinue); // a number may always grow (until its digit cap)
    }

    [Theory]
    [InlineData("{\"type\":\"date\"}", "type 'date'")]
    [InlineData("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"strin\"}}}", "#/properties/a")]
    [InlineData("{\"enum\":[]}", "'enum'")]
    [InlineData("{\"$ref\":\"#/$defs/missing\"}", "points to nothing")]
    [InlineData("{\"type\":\"array\",\"minItems\":3,\"maxItems\":1}", "maxItems 1")]
    [InlineData("{not json", "not valid JSON")]
    public void BadSchemasAreNamed(string schema, string expected)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Make(Grammar.JsonSchema(schema)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnsupportedStructuresSaySo()
    {
        var e = Assert.Throws<NotSupportedException>(() => Grammar.JsonSchema("""{"allOf":[{"type":"object"},{"required":["a"]}]}"""));
        Assert.Contains("allOf", e.Message);
        Assert.Throws<NotSupportedException>(() => Grammar.JsonSchema("""{"$ref":"https://example.com/s.json"}"""));
    }

    /// <summary>
    /// The budget rule rests on MinRemaining being exact: from every state some byte lowers it by one, and
    /// following such bytes completes the value in exactly that many. Checked from many prefixes of real texts.
    /// </summary>
    [Fact]
    public void MinRemainingIsReachedByTheShortestCompletion()
    {
        var cases = new (Grammar Grammar, string Text)[]
        {
            (Grammar.Json(), "{\"a\": [1, {\"b\": null}], \"c\": \"d\u00e9\", \"e\": -1.5e3}"),
            (Grammar.JsonSchema(Weather), "{\"city\": \"Paris\", \"unit\": \"c\", \"days\": 3}"),
            (Grammar.ToolCall([new ToolSchema("get_weather", Weather), new ToolSchema("t", """{"type":"object","properties":{"n":{"type":"array","items":{"type":"integer"},"minItems":2}},"required":["n"]}""")]),
                "<tool_call>{\"name\": \"t\", \"arguments\": {\"n\": [1, 22, 3]}}</tool_call>"),
        };
        var checkedStates = 0;
        foreach (var (grammar, text) in cases)
        {
            var c = Make(grammar);
            var bytes = Encoding.UTF8.GetBytes(text);
            Assert.True(c.Accepts(text), text);
            for (var cut = 0; cut <= bytes.Length; cut++)
            {
                var state = c.Initial.Step(bytes.AsSpan(0, cut))!;
                var need = state.MinRemaining;
                var steps = 0;
                while (!state.IsComplete)
                {
                    var next = Enumerable.Range(0, 256).Select(b => state.Step((byte)b)).FirstOrDefault(s => s is not null && s.MinRemaining == state.MinRemaining - 1);
                    Assert.True(next is not null, $"{text[..Math.Min(cut, text.Length)]}: no byte brings the value closer (MinRemaining {state.MinRemaining})");
                    state = next;
                    steps++;
                }
                Assert.Equal(need, steps);
                checkedStates++;
            }
        }
        Assert.True(checkedStates > 150);
    }
}
