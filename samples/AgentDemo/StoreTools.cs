using System.ComponentModel;
using Cllm.Text;
using Cllm.Training.Data;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace Cllm.Samples.AgentDemo;

/// <summary>
/// The demo's tools, with exactly the names, descriptions and parameters of <see cref="DemoTools"/> (what the
/// default model was trained to call). run_sql runs real SQLite on a store database built at startup in a
/// temporary file, through <see cref="ReadOnlySqlTool"/>: one read-only SELECT, a time limit and a row cap, so
/// whatever SQL the model writes cannot change anything, run away or flood the context.
/// </summary>
sealed class StoreTools : IDisposable
{
    readonly StoreDatabase _store = new();
    readonly string _path = Path.Combine(Path.GetTempPath(), $"cllm-store-{Guid.NewGuid():N}.db");
    readonly ReadOnlySqlTool _sql;

    public StoreTools()
    {
        _store.WriteSqlite(_path);
        _sql = new ReadOnlySqlTool(_path);
    }

    /// <summary>Called with (tool, arguments, result) on every call, so the console shows what the model did.</summary>
    public Action<string, string, string>? OnCall { get; set; }

    [KernelFunction("run_sql"), Description("Run read-only SQL on the store database.")]
    public string RunSql([Description("A single SQLite SELECT statement.")] string query) =>
        Report("run_sql", query, () => _sql.Run(query)); // capped, timed and read-only; errors come back as text

    [KernelFunction("get_order_status"), Description("Get an order's status.")]
    public string GetOrderStatus([Description("The order's id.")] int order_id) =>
        Report("get_order_status", order_id.ToString(), () => DemoTools.OrderStatusJson(_store, order_id));

    [KernelFunction("calculate"), Description("Evaluate arithmetic.")]
    public string Calculate([Description("Numbers with + - * / and parentheses.")] string expression) =>
        Report("calculate", expression, () => DemoTools.Invoke(new ToolCall("calculate", new Dictionary<string, object?> { ["expression"] = expression }), _store));

    [KernelFunction("get_weather"), Description("Get a city's weather forecast.")]
    public string GetWeather([Description("The city's name.")] string city) =>
        Report("get_weather", city, () => DemoTools.WeatherJson(city));

    /// <summary>The same methods as plain AIFunctions (bare names, in DemoTools order) for the agent.</summary>
    public IList<AITool> AsAITools() =>
    [
        AIFunctionFactory.Create(RunSql, DemoTools.RunSql.Name, DemoTools.RunSql.Description),
        AIFunctionFactory.Create(GetOrderStatus, DemoTools.GetOrderStatus.Name, DemoTools.GetOrderStatus.Description),
        AIFunctionFactory.Create(Calculate, DemoTools.Calculate.Name, DemoTools.Calculate.Description),
        AIFunctionFactory.Create(GetWeather, DemoTools.GetWeather.Name, DemoTools.GetWeather.Description),
    ];

    string Report(string tool, string arguments, Func<string> run)
    {
        string result = run();
        OnCall?.Invoke(tool, arguments, result);
        return result;
    }

    public void Dispose()
    {
        _sql.Dispose();
        File.Delete(_path);
    }
}
