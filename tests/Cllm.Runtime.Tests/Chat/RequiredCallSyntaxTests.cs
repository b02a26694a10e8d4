using System.Text.Json;
using Cllm.Chat;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Tests.Text;
using Cllm.Tests.Text.Templates;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Chat;

/// <summary>
/// A required tool call is guaranteed in each family's own call syntax, not only in tagged JSON: Llama 3.1's bare
/// {"name", "parameters"} object and Mistral's [TOOL_CALLS] array, with the real templates and real tokenizers. The
/// grammar admits exactly the calls the format's own parser reads back, and a random model under it writes one.
/// </summary>
public sealed class RequiredCallSyntaxTests
{
    static readonly ToolDefinition Weather = ToolDefinition.FromJsonSchema("get_weather", "Gets the weather.", JsonDocument.Parse("""
        {"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},
         "required":["city"],"additionalProperties":false}
        """).RootElement);

    static readonly ToolDefinition Time = new("get_time", "Gets the time.", [new("zone", "string", "A time zone.")]);

    // Enums and booleans only: every text of its grammar is finite, so a random model's call always ends.
    static readonly ToolDefinition Units = ToolDefinition.FromJsonSchema("set_units", "Sets units.", JsonDocument.Parse("""
        {"type":"object","properties":{"unit":{"type":"string","enum":["celsius","fahrenheit"]},"metric":{"type":"boolean"}},
         "required":["unit","metric"],"additionalProperties":false}
        """).RootElement);

    public static TheoryData<string, string, string> Families() => new()
    {
        // template fixture (Llama 3.2's is 3.1's tool template), tokenizer fixture, a valid call as the family writes it after the forced text
        { "llama3_2", "llama3.1", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}" },
        { "mistral_nemo", "mistral", "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}]" },
    };

    static PreparedTurn Prepare(string template, TextTokenizer tokenizer, ToolChoice choice, params ToolDefinition[] tools)
    {
        var format = TemplateChatFormat.FromModelDirectory(TemplateFixtures.FamilyFolder(template))!;
        return PreparedTurn.Create(format, tokenizer, tokenizer.EosIds, new ChatTurnRequest
        {
            Turns = [new("user", "Weather in Oslo?")], Tools = tools.Length > 0 ? tools : [Weather, Time], ToolChoice = choice,
        });
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void TheGrammarAdmitsExactlyValidCallsOfTheRequiredToolAndTheFormatReadsThemBack(string template, string family, string call)
    {
        using var folder = new TempFolder();
        var tokenizer = TokenizerReferenceTests.LoadFamily(family, folder.Path);
        var turn = Prepare(template, tokenizer, ToolChoice.Tool("get_weather"));
        var grammar = Assert.IsType<Cllm.Constraints.TokenConstraint>(turn.Constraint);
        Assert.True(grammar.Accepts(call), call);
        Assert.False(grammar.Accepts(call.Replace("get_weather", "get_time")), "another tool than the required one");
        Assert.False(grammar.Accepts(call.Replace("\"city\": \"Oslo\", ", "")), "a required argument missing");
        Assert.False(grammar.Accepts(call.Replace("\"celsius\"", "\"kelvin\"")), "a value outside the enum");
        Assert.False(grammar.Accepts(call.Replace("parameters", "params").Replace("arguments", "args")), "the wrong member name");

        // The turn's reader turns the tokens of that text into the call (the forced text is already in the prompt).
        var reader = turn.CreateReader();
        Assert.Equal("", reader.Push(tokenizer.Encode(call, addSpecial: false)));
        var result = reader.Finish();
        Assert.Null(result.MalformedToolCall);
        var read = Assert.Single(result.ToolCalls);
        Assert.Equal("get_weather", read.Name);
        Assert.Equal(("Oslo", "celsius"), (read.Arguments["city"]?.ToString(), read.Arguments["unit"]?.ToString()));

        // With any tool allowed, both offered tools are admitted and nothing else.
        var any = Prepare(template, tokenizer, ToolChoice.Any).Constraint!;
        Assert.True(any.Accepts(call));
        Assert.True(any.Accepts(call.Replace("get_weather", "get_time").Replace("\"city\": \"Oslo\", \"unit\": \"celsius\"", "\"zone\": \"UTC\"")));
        Assert.False(any.Accepts(call.Replace("get_weather", "get_news")));
    }

    // Mistral's 32k vocabulary only: a random model's pass over Llama 3's 128k-token vocabulary under a grammar costs
    // CI about 40 s for what the Mistral case already shows (the grammar is the same code with another member name).
    [Theory]
    [InlineData("mistral_nemo", "mistral")]
    public void ARandomModelUnderTheGrammarWritesACallTheFormatReads(string template, string family)
    {
        using var folder = new TempFolder();
        var tokenizer = TokenizerReferenceTests.LoadFamily(family, folder.Path);
        var turn = Prepare(template, tokenizer, ToolChoice.Tool("set_units"), Weather, Units);
        var config = ModelConfig.Preset("tiny") with { VocabSize = tokenizer.VocabularySize };
        using var model = new Transformer(config);
        model.InitializeRandom(5, 0.5); // noisy logits: only the grammar makes the output a call
        using var cache = new KvCache(config, 512, model.DType, model.Device);
        var options = turn.Configure(new GenerationOptions { MaxNewTokens = 200, BlockSize = 8 });
        var ids = TestModels.Generate(model, cache, turn.PromptIds, options, out _);
        var reader = turn.CreateReader();
        reader.Push(ids);
        var result = reader.Finish();
        Assert.Null(result.MalformedToolCall);
        var read = Assert.Single(result.ToolCalls);
        Assert.Equal("set_units", read.Name);
        Assert.Contains(read.Arguments["unit"]?.ToString(), new[] { "celsius", "fahrenheit" });
        Assert.Contains(read.Arguments["metric"]?.ToString(), new[] { "True", "False", "true", "false" });
    }
}
