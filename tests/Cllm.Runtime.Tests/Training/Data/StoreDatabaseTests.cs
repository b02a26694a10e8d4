using Cllm.Text;
using Microsoft.Data.Sqlite;
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
    /// Builds the database the demo will build (SchemaSql + InsertStatements) in real SQLite (Microsoft.Data.Sqlite,
    /// the demo's own driver, with its bundled engine: nothing to install) and checks that SQLite gives
    /// StoreDatabase.Execute's rows for every generated query.
    /// </summary>
    [Fact]
    public void RealSqliteAgreesWithExecute()
    {
        var queries = GeneratedSql().Distinct().ToList();
        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        foreach (var statement in Db.InsertStatements().Prepend(StoreDatabase.SchemaSql))
        {
            using var command = connection.CreateCommand();
            command.CommandText = statement;
            command.ExecuteNonQuery();
        }
        Assert.True(queries.Count > 20, $"only {queries.Count} distinct generated queries");

        var nonEmpty = 0;
        foreach (var query in queries)
        {
            var sqliteRows = SqliteRows(connection, query);
            var ours = Db.Execute(query)!.Select(r => r.Select(v => JsonSerializer.Serialize(v)).ToArray()).ToList();
            // No ORDER BY means SQLite may pick any order (joins especially), so those compare as sets.
            if (!query.Contains("ORDER BY"))
            {
                sqliteRows = sqliteRows.OrderBy(r => string.Join("|", r)).ToList();
                ours = ours.OrderBy(r => string.Join("|", r)).ToList();
            }

            Assert.True(ours.Count == sqliteRows.Count, $"{query}: {ours.Count} rows vs SQLite's {sqliteRows.Count}");
            if (ours.Count > 0) nonEmpty++;
            for (int r = 0; r < ours.Count; r++)
            {
                Assert.True(ours[r].Length == sqliteRows[r].Length, $"{query}: row {r} has {ours[r].Length} columns vs SQLite's {sqliteRows[r].Length}");
                for (int c = 0; c < ours[r].Length; c++)
                {
                    bool same = ours[r][c] == sqliteRows[r][c] ||
                        (double.TryParse(ours[r][c], out double a) && double.TryParse(sqliteRows[r][c], out double b) && Math.Abs(a - b) < 1e-9);
                    Assert.True(same, $"{query}: row {r} column {c}: {ours[r][c]} vs SQLite's {sqliteRows[r][c]}");
                }
            }
        }

        // Agreement on empty results alone would prove little.
        Assert.True(nonEmpty > queries.Count / 2, $"only {nonEmpty} of {queries.Count} queries returned rows");
        output.WriteLine($"{queries.Count} distinct queries agree with SQLite ({nonEmpty} with rows).");
    }

    /// <summary>A query's rows from SQLite, each value as JSON (integers and reals as numbers, text as strings).</summary>
    static List<string[]> SqliteRows(SqliteConnection connection, string query)
    {
        using var command = connection.CreateCommand();
        command.CommandText = query;
        using var reader = command.ExecuteReader();
        var rows = new List<string[]>();
        while (reader.Read())
            rows.Add([.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "null" : JsonSerializer.Serialize(reader.GetValue(i)))]);
        return rows;
    }

    sealed class RowsComparer : IEqualityComparer<IReadOnlyList<IReadOnlyList<object?>>?>
    {
        public bool Equals(IReadOnlyList<IReadOnlyList<object?>>? x, IReadOnlyList<IReadOnlyList<object?>>? y) =>
            x is not null && y is not null && JsonSerializer.Serialize(x) == JsonSerializer.Serialize(y);

        public int GetHashCode(IReadOnlyList<IReadOnlyList<object?>>? obj) => 0;
    }
}
