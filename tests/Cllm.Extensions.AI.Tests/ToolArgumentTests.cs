using System.Text.Json;
using Cllm.Chat;
using Cllm.Text;
using Microsoft.Extensions.AI;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>
/// Arguments that are arrays, objects, enums and nested values: an AIFunction's whole schema reaches the prompt,
/// and a call written with such arguments (ids of the default model's tokenizer, read by the same turn reader the
/// client uses) parses and invokes the real function. The default model was trained on scalar tools only, so
/// these calls are written here rather than generated.
/// </summary>
public sealed class ToolArgumentTests
{
    public enum Mode { Train, Car }

    public sealed record Budget(double Amount, string Currency);

    [Fact]
    public async Task NestedArgumentsParseAndInvokeARealFunction()
    {
        var calls = new List<string>();
        var plan = AIFunctionFactory.Create((string[] cities, Budget budget, Mode mode, int nights) =>
        {
            calls.Add($"{string.Join(",", cities)}|{budget.Amount} {budget.Currency}|{mode}|{nights}");
            return "booked";
        }, "plan_trip", "Plans a trip.");
        var weather = AIFunctionFactory.Create((string city) => { calls.Add("weather " + city); return "sunny"; }, "get_weather", "Gets weather.");

        var tools = new[] { plan, weather }.Select(f => ToolDefinition.FromJsonSchema(f.Name, f.Description, f.JsonSchema)).ToList();
        string prompt = ChatFormats.Cllm.Render([new("user", "Plan it.")], tools, addGenerationPrompt: true);
        Assert.Contains("plan_trip: Plans a trip. {\"cities\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", prompt);
        Assert.Contains("\"enum\":[\"Train\",\"Car\"]", prompt); // the enum's values reach the model
        Assert.Contains("\"budget\":{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"number\"},\"currency\":{\"type\":\"string\"}},\"required\":[\"amount\",\"currency\"]}", prompt);

        var tokenizer = TextTokenizer.Load(TestModels.Cllm);
        int end = tokenizer.TokenToId(CllmChatFormat.End)!.Value;
        var turn = PreparedTurn.Create(ChatFormats.Cllm, tokenizer, [end], new ChatTurnRequest { Turns = [new("user", "Plan it.")], Tools = tools });
        string output = "<tool_call>{\"name\":\"plan_trip\",\"arguments\":{\"cities\":[\"Oslo\",\"Bergen\"],\"budget\":{\"amount\":1200.5," +
            "\"currency\":\"EUR\"},\"mode\":\"Car\",\"nights\":4}}</tool_call><tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}</tool_call>";
        var reader = turn.CreateReader();
        Assert.Equal("", reader.Push([.. tokenizer.Encode(output, addSpecial: false), end]));
        var result = reader.Finish();
        Assert.Equal(["plan_trip", "get_weather"], result.ToolCalls.Select(c => c.Name)); // several calls in one turn

        foreach (var call in result.ToolCalls)
        {
            var function = call.Name == "plan_trip" ? plan : weather;
            await function.InvokeAsync(new AIFunctionArguments(call.Arguments.ToDictionary(kv => kv.Key, kv => kv.Value)));
        }

        Assert.Equal(["Oslo,Bergen|1200.5 EUR|Car|4", "weather Oslo"], calls);
        Assert.IsType<JsonElement>(result.ToolCalls[0].Arguments["cities"]);
    }
}
