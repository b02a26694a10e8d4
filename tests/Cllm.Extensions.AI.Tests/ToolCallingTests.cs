using System.ComponentModel;
using Cllm.Training.Data;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;
using Xunit;
using FunctionCallContent = Microsoft.Extensions.AI.FunctionCallContent;
using FunctionResultContent = Microsoft.Extensions.AI.FunctionResultContent;

namespace Cllm.Extensions.AI.Tests;

/// <summary>Tool calling through the default model (models/cllm-tiny, Jacobi decoding), with real functions and the real frameworks.</summary>
public sealed class ToolCallingTests : IDisposable
{
    static readonly StoreDatabase Store = new();
    readonly CllmChatClient _client = new(new CllmChatClientOptions { ModelPath = TestModels.Cllm, Defaults = new() { MaxNewTokens = 64 } });

    public void Dispose() => _client.Dispose();

    /// <summary>The demo tools as a plugin; records what the model called.</summary>
    public sealed class StorePlugin
    {
        public List<string> Calls { get; } = [];

        [KernelFunction("run_sql"), Description("Run read-only SQL on the store database.")]
        public string RunSql([Description("A single SQLite SELECT statement.")] string query) =>
            Record($"run_sql({query})", Store.Execute(query) is { } rows ? DemoTools.FormatRows(rows) : DemoTools.Error("unsupported query"));

        [KernelFunction("get_order_status"), Description("Get an order's status.")]
        public string GetOrderStatus([Description("The order's id.")] int order_id) => Record($"get_order_status({order_id})", DemoTools.OrderStatusJson(Store, order_id));

        [KernelFunction("calculate"), Description("Evaluate arithmetic.")]
        public string Calculate([Description("Numbers with + - * / and parentheses.")] string expression) =>
            Record($"calculate({expression})", DemoTools.Invoke(new("calculate", new Dictionary<string, object?> { ["expression"] = expression }), Store));

        [KernelFunction("get_weather"), Description("Get a city's weather forecast.")]
        public string GetWeather([Description("The city's name.")] string city) => Record($"get_weather({city})", DemoTools.WeatherJson(city));

        string Record(string call, string result)
        {
            Calls.Add(call);
            return result;
        }

        public IList<AITool> AsAITools() =>
        [
            AIFunctionFactory.Create(RunSql, "run_sql", DemoTools.RunSql.Description),
            AIFunctionFactory.Create(GetOrderStatus, "get_order_status", DemoTools.GetOrderStatus.Description),
            AIFunctionFactory.Create(Calculate, "calculate", DemoTools.Calculate.Description),
            AIFunctionFactory.Create(GetWeather, "get_weather", DemoTools.GetWeather.Description),
        ];
    }

    [Fact]
    public async Task TheModelsToolCallBecomesAFunctionCallContent()
    {
        var plugin = new StorePlugin();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in _client.GetStreamingResponseAsync([new(ChatRole.User, "What is the status of order 17?")], new() { Tools = plugin.AsAITools() }))
            updates.Add(u);

        var call = Assert.Single(updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_order_status", call.Name);
        Assert.StartsWith("call_", call.CallId);
        Assert.Equal(17L, call.Arguments!["order_id"]);
        Assert.Equal(ChatFinishReason.ToolCalls, updates[^1].FinishReason);
        Assert.DoesNotContain("<tool_call>", string.Concat(updates.Select(u => u.Text)));

        // ToolMode None: no tools in the prompt, no call parsed.
        var none = await _client.GetResponseAsync([new(ChatRole.User, "What is the status of order 17?")], new() { Tools = plugin.AsAITools(), ToolMode = ChatToolMode.None });
        Assert.Empty(none.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());

        // RequireSpecific forces the named function.
        var forced = await _client.GetResponseAsync([new(ChatRole.User, "What is the weather like in Oslo?")],
            new() { Tools = plugin.AsAITools(), ToolMode = ChatToolMode.RequireSpecific("get_weather") });
        Assert.Equal("get_weather", Assert.Single(forced.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()).Name);
    }

    [Fact]
    public async Task UseFunctionInvocationRunsARealAIFunctionAndTheModelAnswers()
    {
        var plugin = new StorePlugin();
        using var client = _client.AsBuilder().UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync([new(ChatRole.User, "What is the weather like in Denver?")], new() { Tools = plugin.AsAITools() });

        Assert.Equal(["get_weather(Denver)"], plugin.Calls);
        var contents = response.Messages.SelectMany(m => m.Contents).ToList();
        var call = Assert.Single(contents.OfType<FunctionCallContent>());
        Assert.Equal(call.CallId, Assert.Single(contents.OfType<FunctionResultContent>()).CallId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Contains("Denver", response.Text);
        Assert.Contains("sunny", response.Text); // DemoTools.WeatherJson("Denver")'s forecast
        // Both model calls' usage, added up: the prompts (with the tool definitions) outweigh the answers.
        var usage = response.Usage!;
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.InRange(usage.OutputTokenCount!.Value, 10, usage.InputTokenCount!.Value);
    }

    [Fact]
    public async Task SemanticKernelAutoFunctionCallingInvokesAKernelFunction()
    {
        var plugin = new StorePlugin();
        var builder = Kernel.CreateBuilder();
        builder.AddCllmChatClient(_client.Engine, new CllmChatClientOptions { Defaults = new() { MaxNewTokens = 64 } });
        builder.Plugins.AddFromObject(plugin, "store");
        var kernel = builder.Build();

        var settings = new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };
        var answer = await kernel.InvokePromptAsync("What is the status of order 17?", new(settings));
        Assert.Equal(["get_order_status(17)"], plugin.Calls);
        Assert.Contains("17", answer.ToString());

        // The IChatCompletionService is registered too.
        var chat = kernel.GetRequiredService<IChatCompletionService>();
        var reply = await chat.GetChatMessageContentAsync("What is the weather like in Denver?", settings, kernel);
        Assert.Equal("get_weather(Denver)", plugin.Calls[^1]);
        Assert.Contains("Denver", reply.Content);
    }

    [Fact]
    public async Task AnAgentFrameworkAgentRunsWithTools()
    {
        var plugin = new StorePlugin();
        var agent = new ChatClientAgent(_client, instructions: null, name: "store", tools: plugin.AsAITools());
        var response = await agent.RunAsync("What is the status of order 17?");
        Assert.Equal(["get_order_status(17)"], plugin.Calls);
        Assert.Contains("Order 17", response.Text);
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 10, response.Usage.InputTokenCount!.Value);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task JacobiUpdatesCarrySeveralTokensOnTheCllm()
    {
        // One update per forward pass: with Jacobi some passes make several tokens final, so there are fewer
        // passes than tokens, and the text equals autoregressive decoding's.
        using var cllm = new CllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Cllm });
        var question = new List<ChatMessage> { new(ChatRole.User, "Sam has 12 apples. Sam gets 5 more and then gives away 3. How many apples does Sam have now?") };
        var jacobi = new List<ChatResponseUpdate>();
        await foreach (var u in cllm.GetStreamingResponseAsync(question, new() { MaxOutputTokens = 64, RawRepresentationFactory = _ => new Decoding.GenerationSettings { BlockSize = 16 } }))
            jacobi.Add(u);
        var ar = await cllm.GetResponseAsync(question, new() { MaxOutputTokens = 64, RawRepresentationFactory = _ => new Decoding.GenerationSettings { Decoder = Decoding.DecoderKind.Autoregressive } });

        var usage = jacobi.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
        long passes = usage.AdditionalCounts![CllmChatClient.ForwardPassesCount];
        Assert.Equal(ar.Text, string.Concat(jacobi.Select(u => u.Text)));
        Assert.True(passes < usage.OutputTokenCount, $"{usage.OutputTokenCount} tokens in {passes} passes");
        Assert.True(usage.AdditionalCounts[CllmChatClient.FastForwardedTokensCount] > 0);
        Assert.True(jacobi.Count(u => u.Text.Length > 0) < usage.OutputTokenCount); // updates carry several tokens
    }
}
