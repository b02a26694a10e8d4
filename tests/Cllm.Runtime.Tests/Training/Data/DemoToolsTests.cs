using Cllm.Text;
using System.Text.Json;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Training.Data;

public sealed class DemoToolsTests
{
    static readonly StoreDatabase Db = new();

    static string Calc(string expression) =>
        DemoTools.Invoke(new ToolCall("calculate", new Dictionary<string, object?> { ["expression"] = expression }), Db);

    [Theory]
    [InlineData("2 * 3 + 4", "{\"result\":10}")]
    [InlineData("(12 + 30) / 7", "{\"result\":6}")]
    [InlineData("-(2 + 3) * 2", "{\"result\":-10}")]
    [InlineData("10 - 4 - 3", "{\"result\":3}")]
    [InlineData("7 / 2", "{\"result\":3.5}")]
    [InlineData(" 1.5*4 ", "{\"result\":6}")]
    [InlineData("1 / 0", "{\"error\":\"invalid expression\"}")]
    [InlineData("2 +", "{\"error\":\"invalid expression\"}")]
    [InlineData("(1 + 2", "{\"error\":\"invalid expression\"}")]
    [InlineData("2 ^ 3", "{\"error\":\"invalid expression\"}")]
    [InlineData("", "{\"error\":\"invalid expression\"}")]
    public void CalculateEvaluatesArithmeticAndReportsBadInput(string expression, string expected) => Assert.Equal(expected, Calc(expression));

    [Fact]
    public void ToolsAnswerFromTheDatabaseAndNeverThrowOnBadCalls()
    {
        var order = Db.Orders[41];
        Assert.Equal($"{{\"order_id\":42,\"status\":\"{order.Status}\"}}",
            DemoTools.Invoke(new ToolCall("get_order_status", new Dictionary<string, object?> { ["order_id"] = 42L }), Db));
        Assert.Contains("error", DemoTools.Invoke(new ToolCall("get_order_status", new Dictionary<string, object?> { ["order_id"] = 999 }), Db));
        Assert.Contains("error", DemoTools.Invoke(new ToolCall("get_order_status", new Dictionary<string, object?> { ["order_id"] = "abc" }), Db));
        Assert.Contains("error", DemoTools.Invoke(new ToolCall("get_order_status", new Dictionary<string, object?>()), Db));
        Assert.Equal(DemoTools.WeatherJson("Oslo"), DemoTools.Invoke(new ToolCall("get_weather", new Dictionary<string, object?> { ["city"] = "oslo" }), Db));
        Assert.Contains("error", DemoTools.WeatherJson("Atlantis"));
        Assert.Contains("error", DemoTools.Invoke(new ToolCall("run_sql", new Dictionary<string, object?> { ["query"] = "DROP TABLE orders" }), Db));
        Assert.Contains("error", DemoTools.Invoke(new ToolCall("launch_rocket", new Dictionary<string, object?>()), Db));
        string rows = DemoTools.Invoke(new ToolCall("run_sql", new Dictionary<string, object?> { ["query"] = "SELECT name, price FROM products ORDER BY price DESC LIMIT 2" }), Db);
        var top = Db.Products.OrderByDescending(p => p.Price).Take(2).ToList();
        Assert.Equal($"[[\"{top[0].Name}\",{top[0].Price}],[\"{top[1].Name}\",{top[1].Price}]]", rows);
    }

    [Fact]
    public void DefinitionsAndSchemas()
    {
        Assert.Equal(["run_sql", "get_order_status", "calculate", "get_weather"], DemoTools.All.Select(t => t.Name));
        using var schema = JsonDocument.Parse(DemoTools.GetOrderStatus.ParametersJsonSchema());
        Assert.Equal("object", schema.RootElement.GetProperty("type").GetString());
        Assert.Equal("integer", schema.RootElement.GetProperty("properties").GetProperty("order_id").GetProperty("type").GetString());
        Assert.Equal("order_id", schema.RootElement.GetProperty("required")[0].GetString());
        Assert.All(DemoTools.All, t => JsonDocument.Parse(t.ParametersJsonSchema()).Dispose());
        Assert.Equal("{\"query\":\"string\"}", DemoTools.RunSql.CompactSchema());
        Assert.Equal(7, CllmChatFormat.Markers.Count);
    }
}
