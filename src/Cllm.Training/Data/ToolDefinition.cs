using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

using Cllm.Text;

namespace Cllm.Training.Data;

/// <summary>
/// The agent demo's tools and their reference implementations. Training data and the demo both produce
/// tool results through these methods, so the model sees the same result format in both.
/// </summary>
public static class DemoTools
{
    public static readonly ToolDefinition RunSql = new("run_sql", "Run read-only SQL on the store database.",
        [new("query", "string", "A single SQLite SELECT statement.")]);

    public static readonly ToolDefinition GetOrderStatus = new("get_order_status", "Get an order's status.",
        [new("order_id", "integer", "The order's id.")]);

    public static readonly ToolDefinition Calculate = new("calculate", "Evaluate arithmetic.",
        [new("expression", "string", "Numbers with + - * / and parentheses.")]);

    public static readonly ToolDefinition GetWeather = new("get_weather", "Get a city's weather forecast.",
        [new("city", "string", "The city's name.")]);

    public static IReadOnlyList<ToolDefinition> All { get; } = [RunSql, GetOrderStatus, Calculate, GetWeather];

    /// <summary>Rows as a JSON array of arrays: no column names, so the text does not depend on how SQLite names expression columns.</summary>
    public static string FormatRows(IEnumerable<IReadOnlyList<object?>> rows) => JsonSerializer.Serialize(rows, CllmChatFormat.Json);

    public static string Error(string message) => JsonSerializer.Serialize(new Dictionary<string, string> { ["error"] = message }, CllmChatFormat.Json);

    /// <summary>
    /// Runs a call against <paramref name="db"/> and returns the tool result JSON. run_sql understands only
    /// the canonical query forms (<see cref="StoreDatabase.Execute"/>); the demo runs real SQLite instead and
    /// formats rows with <see cref="FormatRows"/>. Bad calls give an error object rather than an exception,
    /// because the model's call is untrusted input.
    /// </summary>
    public static string Invoke(ToolCall call, StoreDatabase db)
    {
        string? Arg(string name) => call.Arguments.TryGetValue(name, out var v) ? Convert.ToString(v, CultureInfo.InvariantCulture) : null;
        switch (call.Name)
        {
            case "run_sql":
                var rows = Arg("query") is { } sql ? db.Execute(sql) : null;
                return rows is null ? Error("unsupported query") : FormatRows(rows);
            case "get_order_status":
                return int.TryParse(Arg("order_id"), CultureInfo.InvariantCulture, out int id) ? OrderStatusJson(db, id) : Error("order_id must be an integer");
            case "calculate":
                double? value = Arithmetic.TryEvaluate(Arg("expression") ?? "", out string? problem);
                return value is { } v && double.IsFinite(v) ? ResultJson(v) : Error(problem ?? "invalid expression");
            case "get_weather":
                return WeatherJson(Arg("city") ?? "");
            default:
                return Error($"unknown tool {call.Name}");
        }
    }

    public static string OrderStatusJson(StoreDatabase db, int orderId) =>
        db.Orders.FirstOrDefault(o => o.Id == orderId) is { } order
            ? JsonSerializer.Serialize(new Dictionary<string, object> { ["order_id"] = order.Id, ["status"] = order.Status }, CllmChatFormat.Json)
            : Error($"no order {orderId}");

    public static string ResultJson(double value) =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["result"] = value == Math.Floor(value) && Math.Abs(value) < 1e15 ? (long)value : value }, CllmChatFormat.Json);

    /// <summary>A canned forecast: the same every run, derived from the city's position in the word list.</summary>
    public static string WeatherJson(string city)
    {
        int i = StoreDatabase.Cities.ToList().FindIndex(c => string.Equals(c, city.Trim(), StringComparison.OrdinalIgnoreCase));
        if (i < 0) return Error($"unknown city {city}");
        string[] skies = ["sunny", "cloudy", "rainy", "windy", "snowy"];
        var forecast = new Dictionary<string, object> { ["city"] = StoreDatabase.Cities[i], ["forecast"] = skies[i * 3 % skies.Length], ["high_c"] = 4 + i * 7 % 26 };
        return JsonSerializer.Serialize(forecast, CllmChatFormat.Json);
    }
}

/// <summary>
/// Recursive-descent evaluation of + - * / with parentheses and unary minus; null when malformed. Input is
/// the model's, so its length and nesting are bounded (deep nesting would otherwise overflow the stack).
/// </summary>
internal static class Arithmetic
{
    public const int MaxLength = 1_000, MaxDepth = 64;

    public static double? TryEvaluate(string text) => TryEvaluate(text, out _);

    /// <summary>The value, or null with <paramref name="problem"/> saying why when a limit was hit (null
    /// problem: plain malformed input).</summary>
    public static double? TryEvaluate(string text, out string? problem)
    {
        problem = null;
        if (text.Length > MaxLength)
        {
            problem = $"expression is {text.Length} characters; the limit is {MaxLength}";
            return null;
        }

        var parser = new Parser(text);
        double? value = parser.Sum(0);
        parser.SkipSpaces();
        if (parser.TooDeep) problem = $"expression nests deeper than {MaxDepth} levels";
        return !parser.TooDeep && parser.Pos == text.Length ? value : null;
    }

    private sealed class Parser(string s)
    {
        public int Pos;
        public bool TooDeep;

        public double? Sum(int depth)
        {
            double? left = Product(depth);
            while (left is not null && Next() is '+' or '-')
            {
                char op = s[Pos++];
                double? right = Product(depth);
                left = right is null ? null : op == '+' ? left + right : left - right;
            }

            return left;
        }

        private double? Product(int depth)
        {
            double? left = Factor(depth);
            while (left is not null && Next() is '*' or '/')
            {
                char op = s[Pos++];
                double? right = Factor(depth);
                left = right is null || (op == '/' && right == 0) ? null : op == '*' ? left * right : left / right;
            }

            return left;
        }

        private double? Factor(int depth)
        {
            if (depth >= MaxDepth)
            {
                TooDeep = true;
                return null;
            }

            switch (Next())
            {
                case '-':
                    Pos++;
                    return -Factor(depth + 1);
                case '(':
                    Pos++;
                    double? inner = Sum(depth + 1);
                    if (inner is null || Next() != ')') return null;
                    Pos++;
                    return inner;
            }

            int start = Pos;
            while (Pos < s.Length && (char.IsAsciiDigit(s[Pos]) || s[Pos] == '.')) Pos++;
            return double.TryParse(s.AsSpan(start, Pos - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n)
                ? n
                : null;
        }

        private char Next()
        {
            SkipSpaces();
            return Pos < s.Length ? s[Pos] : '\0';
        }

        public void SkipSpaces()
        {
            while (Pos < s.Length && char.IsWhiteSpace(s[Pos])) Pos++;
        }
    }
}
