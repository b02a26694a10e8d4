using System.Diagnostics;
using System.Text.Json;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Reliability;

/// <summary>The demo's SQL tool on a real SQLite store file, fed what a confused or hostile model might write.</summary>
public sealed class SqlToolTests : IDisposable
{
    readonly TempFolder _folder = new();
    readonly StoreDatabase _store = new();
    readonly ReadOnlySqlTool _tool;
    readonly string _path;

    public SqlToolTests()
    {
        _path = _folder.File("store.db");
        _store.WriteSqlite(_path);
        // A short limit keeps the runaway cases fast; the default's 2 s is tested on its own.
        _tool = new ReadOnlySqlTool(_path, new SqlToolLimits { Timeout = TimeSpan.FromMilliseconds(400) });
    }

    public void Dispose()
    {
        _tool.Dispose();
        _folder.Dispose();
    }

    static string? ErrorOf(string result)
    {
        using var doc = JsonDocument.Parse(result);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var e) ? e.GetString() : null;
    }

    [Fact]
    public void CanonicalQueriesGiveTheCSharpStoresRows()
    {
        foreach (var (sql, expected) in new[]
        {
            ("SELECT COUNT(*) FROM customers WHERE city = 'Oslo'", _store.Execute("SELECT COUNT(*) FROM customers WHERE city = 'Oslo'")),
            ("SELECT name, price FROM products ORDER BY price DESC LIMIT 3", _store.Execute("SELECT name, price FROM products ORDER BY price DESC LIMIT 3")),
        })
            Assert.Equal(DemoTools.FormatRows(expected!), _tool.Run(sql));
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "DELETE FROM orders", "read-only SELECT" },
        { "UPDATE products SET price = 0", "read-only SELECT" },
        { "INSERT INTO customers VALUES (99, 'x', 'y')", "read-only SELECT" },
        { "DROP TABLE orders", "read-only SELECT" },
        { "CREATE TABLE t (x)", "read-only SELECT" },
        { "CREATE TEMP TABLE t AS SELECT 1", "read-only SELECT" },
        { "CREATE INDEX i ON orders(status)", "read-only SELECT" },
        { "ALTER TABLE orders ADD COLUMN x", "read-only SELECT" },
        { "ATTACH DATABASE '/etc/passwd' AS p", "read-only SELECT" },
        { "ATTACH ':memory:' AS m", "read-only SELECT" },
        { "DETACH DATABASE main", "read-only SELECT" },
        { "BEGIN", "read-only SELECT" },
        { "COMMIT", "read-only SELECT" },
        { "SAVEPOINT a", "read-only SELECT" },
        { "ANALYZE", "read-only SELECT" },
        { "REINDEX", "read-only SELECT" },
        { "VACUUM", "read-only SELECT" },
        { "PRAGMA journal_mode = WAL", "PRAGMA journal_mode" },
        { "PRAGMA user_version = 7", "PRAGMA user_version" },
        { "PRAGMA writable_schema = ON", "PRAGMA writable_schema" },
        { "PRAGMA query_only = OFF", "PRAGMA query_only" },
        { "PRAGMA database_list", "PRAGMA database_list" },
        { "SELECT load_extension('/tmp/evil.so')", "load_extension" },
        { "SELECT 1; DELETE FROM orders", "one statement" },
        { "SELECT 1; SELECT 2", "one statement" },
        { "", "empty" },
        { "   \n\t", "empty" },
        { "-- just a comment", "no statement" },
        { "SELEC * FROM orders", "syntax error" },
        { "SELECT * FROM nowhere", "no such table" },
        { "SELECT no_such_field FROM orders", "no such column" },
        { "SELECT '", "unrecognized token" },
        { "SELECT randomblob(1000000000)", "exceed" },
        { "SELECT zeroblob(2000000000)", "exceed" },
        { "SELECT printf('%.*c', 100000000, 'x')", "exceed" },
        { "SELECT replace(hex(zeroblob(600000)), '0', '00')", "exceed" },
        { "SELECT abs(-9223372036854775808)", "integer overflow" },
        { "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT max(x) FROM r", "time limit" },
        { "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x FROM r) SELECT count(*) FROM r", "time limit" },
        { "SELECT count(*) FROM orders a, orders b, orders c, orders d", "time limit" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void BadOrHostileSqlIsAToolErrorNotAnException(string sql, string expected)
    {
        var clock = Stopwatch.StartNew();
        var result = _tool.Run(sql);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        var error = ErrorOf(result);
        Assert.NotNull(error);
        Assert.Contains(expected, error, StringComparison.OrdinalIgnoreCase);
        // The tool still works afterwards and the database is unchanged.
        Assert.Equal($"[[{_store.Orders.Count}]]", _tool.Run("SELECT COUNT(*) FROM orders"));
    }

    [Fact]
    public void VacuumIntoWritesNoFile()
    {
        var target = _folder.File("copy.db");
        Assert.NotNull(ErrorOf(_tool.Run($"VACUUM INTO '{target}'")));
        Assert.False(File.Exists(target));
    }

    [Fact]
    public void RunawayRecursionStopsWithinTheDefaultTwoSeconds()
    {
        using var tool = new ReadOnlySqlTool(_path);
        var clock = Stopwatch.StartNew();
        var error = ErrorOf(tool.Run("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r ORDER BY x DESC"));
        // At least the default 2 s limit; the upper bound leaves room for a CI machine busy with parallel tests.
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(6));
        Assert.Contains("2 s (time limit)", error);
    }

    [Fact]
    public void CancellationStopsAQuery()
    {
        // A time limit far beyond the cancellation: the cancel timer runs on the thread pool, which parallel tests can
        // keep busy for longer than the fixture's 0.4 s limit (CI once saw the limit stop the query first).
        using var tool = new ReadOnlySqlTool(_path, new SqlToolLimits { Timeout = TimeSpan.FromSeconds(60) });
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();
        var error = ErrorOf(tool.Run("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT max(x) FROM r", cancel.Token));
        Assert.Equal("query cancelled", error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"cancelled after {clock.Elapsed}");
    }

    [Fact]
    public void AMissingJoinIsCappedAndTheCapIsReported()
    {
        long total = (long)_store.Customers.Count * _store.Orders.Count * _store.Products.Count;
        using var tool = new ReadOnlySqlTool(_path); // the default limits, as the demo runs
        var clock = Stopwatch.StartNew();
        var result = tool.Run("SELECT c.name, p.name, o.id FROM customers c, orders o, products p");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"counting took {clock.Elapsed}");
        using var doc = JsonDocument.Parse(result);
        var rows = doc.RootElement.GetProperty("rows").GetArrayLength();
        Assert.Equal(new SqlToolLimits().MaxRows, rows);
        Assert.Equal($"first {rows} of {total} rows", doc.RootElement.GetProperty("note").GetString());
        Assert.True(result.Length < new SqlToolLimits().MaxResultBytes + 200);
    }

    [Fact]
    public void WideRowsAreCappedByBytes()
    {
        using var tool = new ReadOnlySqlTool(_path, new SqlToolLimits { MaxResultBytes = 1000, MaxValueChars = 100 });
        var result = tool.Run("SELECT hex(randomblob(400)) FROM orders");
        using var doc = JsonDocument.Parse(result);
        Assert.InRange(result.Length, 100, 1300);
        Assert.Contains($"of {_store.Orders.Count} rows (1000 bytes shown at most)", doc.RootElement.GetProperty("note").GetString());
        Assert.Contains("(800 bytes, cut)", doc.RootElement.GetProperty("rows")[0][0].GetString());
    }

    [Fact]
    public void BlobsAndSpecialValuesStayJson()
    {
        Assert.Equal("[[\"<blob of 16 bytes>\",null,1.5]]", _tool.Run("SELECT randomblob(16), NULL, 1.5"));
        Assert.Equal("[[\"Infinity\"]]", _tool.Run("SELECT 1e999"));
    }

    [Fact]
    public void SchemaQueriesAndTrailingSemicolonsAreAllowed()
    {
        Assert.Null(ErrorOf(_tool.Run("PRAGMA table_info(orders)")));
        Assert.Null(ErrorOf(_tool.Run("SELECT name FROM sqlite_master WHERE type = 'table'")));
        Assert.Equal("[[1]]", _tool.Run("SELECT 1; -- done"));
        Assert.Equal("[[1]]", _tool.Run("SELECT 1;;"));
    }

    [Fact]
    public void TooLongSqlIsRefusedBeforeParsing()
    {
        var error = ErrorOf(_tool.Run("SELECT " + new string('1', 20_000)));
        Assert.Contains("limit is 10000", error);
    }

    [Fact]
    public void ConcurrentCallsAreSerialisedAndCorrect()
    {
        var results = new string[16];
        Parallel.For(0, results.Length, i => results[i] = _tool.Run($"SELECT COUNT(*) FROM orders WHERE quantity >= {i % 5}"));
        for (int i = 0; i < results.Length; i++)
            Assert.Equal($"[[{_store.Orders.Count(o => o.Quantity >= i % 5)}]]", results[i]);
    }

    [Fact]
    public void AMissingDatabaseIsAClearError()
    {
        var e = Assert.Throws<FileNotFoundException>(() => new ReadOnlySqlTool(_folder.File("none.db")));
        Assert.Contains("none.db", e.Message);
    }
}
