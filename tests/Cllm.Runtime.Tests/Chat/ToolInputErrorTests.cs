using System.Text.Json;
using Cllm.Chat;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Chat;

/// <summary>Bad tool definitions get errors that name the tool and the field, before anything is generated.</summary>
public sealed class ToolInputErrorTests
{
    static PreparedTurn Prepare(params ToolDefinition[] tools)
    {
        var (tokenizer, format) = ChatTokenizers.Get("cllm");
        return PreparedTurn.Create(format, tokenizer, tokenizer.EosIds, new ChatTurnRequest { Turns = [new("user", "x")], Tools = tools });
    }

    static ToolDefinition Schema(string name, string schema) =>
        ToolDefinition.FromJsonSchema(name, "A tool.", JsonDocument.Parse(schema).RootElement);

    [Fact]
    public void TwoToolsWithOneNameAreRefusedByName()
    {
        var lookup = Schema("lookup", """{"type":"object","properties":{"q":{"type":"string"}}}""");
        var e = Assert.Throws<ArgumentException>(() => Prepare(lookup, Schema("lookup", """{"type":"object"}""")));
        Assert.Contains("Two tools are named 'lookup'", e.Message);
        Assert.NotNull(Prepare(lookup, Schema("Lookup", """{"type":"object"}"""))); // names are case-sensitive, as in JSON
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"q":{"type":"string"}},"required":[1]}""", "\"required\"")]
    [InlineData("""{"type":"object","properties":{"q":{"type":"string"}},"required":"q"}""", "\"required\"")]
    [InlineData("""{"type":"object","properties":["q"]}""", "\"properties\"")]
    [InlineData("""["q"]""", "must be a JSON object")]
    public void AMalformedSchemaNamesTheToolAndTheField(string schema, string field)
    {
        var e = Assert.Throws<ArgumentException>(() => Schema("lookup", schema));
        Assert.Contains("Tool 'lookup'", e.Message);
        Assert.Contains(field, e.Message);
    }
}
