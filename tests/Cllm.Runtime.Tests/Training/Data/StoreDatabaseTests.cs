using Cllm.Text;
using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Training.Data;

public sealed class StoreDatabaseTests(ITestOutputHelper output)
{
    static readonly StoreDatabase Db = new();

    static List<string> GeneratedSql() =>
        new TaskGenerator(21).Generate(1500, Split.Train, new Dictionary<string, double> { ["sql"] = 1 })
            .Concat(new TaskGenerator(21).Generate(500, Split.HeldOut, new Dictionary<string, double> { ["sql"] = 1 }))
            .Select(c => c.Answer).ToList();

    [Fact]
    public void ContentIsSeededAndShapedAsDocumented()
    {
        Assert.Equal(Db.InsertStatements(), new StoreDatabase().InsertStatements());
        Assert.NotEqual(Db.InsertStatements(), new StoreDatabase(StoreDatabase.DefaultSeed + 1).InsertStatements());
        Assert.Equal((40, 30, 200), (Db.Customers.Count, Db.Products.Count, Db.Orders.Count));
        Assert.Equal(270, Db.InsertStatements().Count());
        Assert.Equal(40, Db.Customers.Select(c => c.Name).Distinct().Count());
        Assert.Equal(30, Db.Products.Select(p => p.Price).Distinct().Count());
        Assert.All(StoreDatabase.Cities, city => Assert.True(Db.Customers.Count(c => c.City == city) >= 2, city));
        Assert.All(Db.Customers, c => Assert.Contains(Db.Orders, o => o.CustomerId == c.Id));
        Assert.All(Db.Products, p => Assert.Contains(Db.Orders, o => o.ProductId == p.Id));
        Assert.All(Db.Orders, o => Assert.Contains(o.Status, StoreDatabase.Statuses));
        Assert.Equal(Db.Orders.Select(o => o.OrderDate).Order(StringComparer.Ordinal), Db.Orders.Select(o => o.OrderDate)); // ids follow dates
        Assert.All(Db.Orders, o => Assert.Matches(@"^2024-\d\d-\d\d$", o.OrderDate));
    }

    [Fact]
    public void EveryGeneratedQueryIsAnsweredAndMatchesIndependentLinq()
    {
        var counts = new Dictionary<string, int>();
        foreach (string sql in GeneratedSql())
        {
            var rows = Db.Execute(sql);
            Assert.True(rows is not null, $"not a canonical form: {sql}");
            var values = rows.Select(r => r.ToArray()).ToList();
            Match m;
            if ((m = Regex.Match(sql, @"^SELECT COUNT\(\*\) FROM customers WHERE city = '([^']+)'$")).Success)
            {
                Assert.Equal((long)Db.Customers.Count(c => c.City == m.Groups[1].Value), Assert.Single(Assert.Single(values)));
                counts["city count"] = counts.GetValueOrDefault("city count") + 1;
            }
            else if ((m = Regex.Match(sql, @"^SELECT SUM\(o\.quantity\) FROM orders o JOIN customers c ON o\.customer_id = c\.id WHERE c\.name = '([^']+)'$")).Success)
            {
                var expected = (from o in Db.Orders join c in Db.Customers on o.CustomerId equals c.Id where c.Name == m.Groups[1].Value select (long)o.Quantity).Sum();
                Assert.Equal(expected, Assert.Single(Assert.Single(values)));
                counts["customer quantity"] = counts.GetValueOrDefault("customer quantity") + 1;
            }
            else if ((m = Regex.Match(sql, @"^SELECT name, price FROM products ORDER BY price DESC LIMIT (\d+)$")).Success)
            {
                var expected = Db.Products.OrderBy(p => -p.Price).Take(int.Parse(m.Groups[1].Value)).Select(p => new object?[] { p.Name, p.Price }).ToList();
                Assert.Equal(expected, values);
                counts["top n"] = counts.GetValueOrDefault("top n") + 1;
            }
            else if ((m = Regex.Match(sql, @"^SELECT SUM\(o\.quantity \* p\.price\) FROM orders o JOIN products p ON o\.product_id = p\.id WHERE p\.category = '([^']+)'$")).Success)
            {
                long expected = 0;
                foreach (var o in Db.Orders)
                    if (Db.Products.Single(p => p.Id == o.ProductId) is { } p && p.Category == m.Groups[1].Value) expected += o.Quantity * p.Price;
                Assert.Equal(expected, Assert.Single(Assert.Single(values)));
                counts["revenue"] = counts.GetValueOrDefault("revenue") + 1;
            }
        }

        output.WriteLine(string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}")));
        Assert.Equal(4, counts.Count);
        Assert.All(counts.Values, n => Assert.True(n >= 20));
    }

    [Fact]
    public void ExecuteRecognisesOnlyCanonicalFormsWithFreeSpacing()
    {
        Assert.Equal(Db.Execute("SELECT COUNT(*) FROM customers WHERE city = 'Oslo'"), Db.Execute("  select count(*)  from customers\nwhere city = 'Oslo' ; "), new RowsComparer());
        Assert.Null(Db.Execute("SELECT * FROM customers"));
        Assert.Null(Db.Execute("DELETE FROM customers WHERE city = 'Oslo'"));
        Assert.Null(Db.Execute("SELECT name, price FROM products ORDER BY price DESC LIMIT 3 OR 1=1"));
        Assert.Empty(Db.Execute("SELECT name, price FROM products ORDER BY price DESC LIMIT 99999999999999999999")!.Skip(30));
        Assert.Equal([[null]], Db.Execute("SELECT SUM(o.quantity) FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.name = 'Nobody'")!.Select(r => r.ToArray()));
    }

    /// <summary>
    /// Builds the SQLite file the demo will build (SchemaSql + InsertStatements) with the sqlite3 shell and
    /// checks that SQLite gives StoreDatabase.Execute's rows for every generated query. Returns early, saying
    /// so, on machines without sqlite3.
    /// </summary>
    [Fact]
    public void RealSqliteAgreesWithExecute()
    {
        var queries = GeneratedSql().Distinct().ToList();
        var script = new List<string> { StoreDatabase.SchemaSql };
        script.AddRange(Db.InsertStatements());
        script.Add(".mode json");
        foreach (var q in queries) script.AddRange([".print #####", q + ";"]);
        string? stdout = RunSqlite(string.Join("\n", script));
        if (stdout is null)
        {
            output.WriteLine("sqlite3 is not on PATH; cross-check not run.");
            return;
        }

        var outputs = stdout.Split("#####\n")[1..];
        Assert.Equal(queries.Count, outputs.Length);
        for (int i = 0; i < queries.Count; i++)
        {
            var sqliteRows = outputs[i].Trim().Length == 0 ? [] :
                JsonDocument.Parse(outputs[i]).RootElement.EnumerateArray().Select(r => r.EnumerateObject().Select(p => p.Value.GetRawText()).ToArray()).ToList();
            var ours = Db.Execute(queries[i])!.Select(r => r.Select(v => JsonSerializer.Serialize(v)).ToArray()).ToList();
            // No ORDER BY means SQLite may pick any order (joins especially), so those compare as sets.
            if (!queries[i].Contains("ORDER BY"))
            {
                sqliteRows = sqliteRows.OrderBy(r => string.Join("|", r)).ToList();
                ours = ours.OrderBy(r => string.Join("|", r)).ToList();
            }

            Assert.True(ours.Count == sqliteRows.Count, $"{queries[i]}: {ours.Count} rows vs SQLite's {sqliteRows.Count}");
            for (int r = 0; r < ours.Count; r++)
                for (int c = 0; c < ours[r].Length; c++)
                {
                    bool same = ours[r][c] == sqliteRows[r][c] ||
                        (double.TryParse(ours[r][c], out double a) && double.TryParse(sqliteRows[r][c], out double b) && Math.Abs(a - b) < 1e-9);
                    Assert.True(same, $"{queries[i]}: row {r} column {c}: {ours[r][c]} vs SQLite's {sqliteRows[r][c]}");
                }
        }

        output.WriteLine($"{queries.Count} distinct queries agree with SQLite.");
    }

    static string? RunSqlite(string script)
    {
        var start = new ProcessStartInfo("sqlite3", ":memory:") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        Process? started;
        try
        {
            started = Process.Start(start);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }

        using (var process = started ?? throw new InvalidOperationException("sqlite3 did not start"))
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(script);
            process.StandardInput.Close();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0 && stderr.Result.Length == 0, "sqlite3 failed: " + stderr.Result);
            return stdout.Result;
        }
    }

    sealed class RowsComparer : IEqualityComparer<IReadOnlyList<IReadOnlyList<object?>>?>
    {
        public bool Equals(IReadOnlyList<IReadOnlyList<object?>>? x, IReadOnlyList<IReadOnlyList<object?>>? y) =>
            x is not null && y is not null && JsonSerializer.Serialize(x) == JsonSerializer.Serialize(y);

        public int GetHashCode(IReadOnlyList<IReadOnlyList<object?>>? obj) => 0;
    }
}
