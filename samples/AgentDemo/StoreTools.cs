using System.ComponentModel;
using Cllm.Text;
using Cllm.Training.Data;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;

namespace Cllm.Samples.AgentDemo;

/// <summary>
/// The demo's tools, with exactly the names, descriptions and parameters of <see cref="DemoTools"/> (what the
/// default model was trained to call). run_sql runs real SQLite on a store database built at startup in a
/// temporary file and opened read-only, so whatever SQL the model writes cannot change it.
/// </summary>
sealed class StoreTools : IDisposable
{
    readonly StoreDatabase _store = new();
    readonly string _path = Path.Combine(Path.GetTempPath(), $"cllm-store-{Guid.NewGuid():N}.db");
    readonly SqliteConnection _readOnly;

    public StoreTools()
    {
        using (var create = new SqliteConnection($"Data Source={_path};Mode=ReadWriteCreate;Pooling=False"))
        {
            create.Open();
            using var command = create.CreateCommand();
            command.CommandText = StoreDatabase.SchemaSql + "\n" + string.Join("\n", _store.InsertStatements());
            command.ExecuteNonQuery();
        }

        _readOnly = new SqliteConnection($"Data Source={_path};Mode=ReadOnly;Pooling=False");
        _readOnly.Open();
    }

    /// <summary>Called with (tool, arguments, result) on every call, so the console shows what the model did.</summary>
    public Action<string, string, string>? OnCall { get; set; }

    [KernelFunction("run_sql"), Description("Run read-only SQL on the store database.")]
    public string RunSql([Description("A single SQLite SELECT statement.")] string query) => Report("run_sql", query, () =>
    {
        try
        {
            using var command = _readOnly.CreateCommand();
            command.CommandText = query;
            using var reader = command.ExecuteReader();
            var rows = new List<IReadOnlyList<object?>>();
            while (reader.Read())
                rows.Add([.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? null : reader.GetValue(i))]);
            return DemoTools.FormatRows(rows);
        }
        catch (SqliteException e)
        {
            return DemoTools.Error(e.Message); // the model's SQL is untrusted input, not a crash
        }
    });

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
        _readOnly.Dispose();
        File.Delete(_path);
    }
}
