using Cllm.Training;
using Xunit;

namespace Cllm.Tests.Training;

public sealed class EvaluationTests
{
    [Theory]
    [InlineData("sql", "SELECT COUNT(*) FROM orders<|end|>", "SELECT COUNT(*) FROM orders", true)]
    [InlineData("sql", " SELECT  COUNT(*) FROM orders; ", "SELECT COUNT(*) FROM orders", true)]
    [InlineData("sql", "SELECT COUNT(*) FROM customers", "SELECT COUNT(*) FROM orders", false)]
    [InlineData("math", "6 * 11 = 66\n66 - 10 = 56\nAnswer: 56<|end|>", "56", true)]
    [InlineData("math", "6 * 11 = 66\nAnswer: 66", "56", false)]
    [InlineData("math", "no final line", "56", false)]
    [InlineData("tool", "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Denver\"}}</tool_call>", "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Denver\"}}", true)]
    [InlineData("tool", "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>", "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Denver\"}}", false)]
    [InlineData("tool", "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":", "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Denver\"}}", false)]
    public void ExactMatchPerDomain(string domain, string completion, string answer, bool correct) =>
        Assert.Equal(correct, Evaluation.IsCorrect(domain, completion, answer));
}
