using System.Text.Json;
using Cllm.Text;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>The demo's calculate tool with inputs a model might produce: errors as results, never a crash.</summary>
public sealed class CalculateToolTests
{
    static readonly StoreDatabase Store = new();

    static string Calculate(string expression) =>
        DemoTools.Invoke(new ToolCall("calculate", new Dictionary<string, object?> { ["expression"] = expression }), Store);

    static string? ErrorOf(string result) =>
        JsonDocument.Parse(result).RootElement.TryGetProperty("error", out var e) ? e.GetString() : null;

    public static TheoryData<string, string> Bad => new()
    {
        { new string('(', 100_000) + "1" + new string(')', 100_000), "limit is 1000" },
        { new string('(', 400) + "1" + new string(')', 400), "deeper than 64" },
        { new string('-', 500) + "1", "deeper than 64" },
        { string.Concat(Enumerable.Repeat("(-", 200)) + "1" + new string(')', 200), "deeper than 64" },
        { new string('(', 900), "deeper than 64" },
        { "", "invalid expression" },
        { "1 +", "invalid expression" },
        { "(1 + 2", "invalid expression" },
        { "1 + 2)", "invalid expression" },
        { "1 / 0", "invalid expression" },
        { "1 / (2 - 2)", "invalid expression" },
        { "2 ^ 3", "invalid expression" },
        { "1e5", "invalid expression" },
        { "1..2", "invalid expression" },
        { "abc", "invalid expression" },
        { "9" + new string('9', 400) + " * 10", "invalid expression" },
        { "NaN", "invalid expression" },
        { "Infinity", "invalid expression" },
        { "1,5", "invalid expression" },
        { "\u0661 + 1", "invalid expression" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public void BadExpressionsAreToolErrors(string expression, string expected) =>
        Assert.Contains(expected, ErrorOf(Calculate(expression)));

    [Theory]
    [InlineData(63)]
    [InlineData(10)]
    public void NestingUpToTheLimitStillEvaluates(int depth)
    {
        var expression = new string('(', depth) + "1 + 2" + new string(')', depth);
        Assert.Equal(DemoTools.ResultJson(3), Calculate(expression));
    }

    [Fact]
    public void NullOrMissingExpressionIsAToolError()
    {
        Assert.Equal("invalid expression", ErrorOf(DemoTools.Invoke(new ToolCall("calculate", new Dictionary<string, object?>()), Store)));
        Assert.Equal("invalid expression",
            ErrorOf(DemoTools.Invoke(new ToolCall("calculate", new Dictionary<string, object?> { ["expression"] = null }), Store)));
    }
}
