using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Cllm.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Cllm.Training.Data;

/// <summary>How much one SQL tool call may cost. The defaults suit a model with a few thousand tokens of context.</summary>
public sealed record SqlToolLimits
{
    /// <summary>A query still running after this is interrupted (also the budget for counting skipped rows).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Rows shown to the model; the rest are counted and reported.</summary>
    public int MaxRows { get; init; } = 50;
    /// <summary>Bytes of JSON shown to the model; rows past it are counted and reported.</summary>
    public int MaxResultBytes { get; init; } = 8_192;
    /// <summary>Characters of one text value shown (longer values are cut and marked).</summary>
    public int MaxValueChars { get; init; } = 500;
    /// <summary>SQLite's SQLITE_LIMIT_LENGTH: no string or blob may grow past this, so randomblob(1e9) fails fast.</summary>
    public int MaxValueBytes { get; init; } = 1_000_000;
    /// <summary>Longest SQL text accepted.</summary>
    public int MaxSqlChars { get; init; } = 10_000;

    public SqlToolLimits Validate()
    {
        if (Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "Timeout must be positive.");
        if (MaxRows < 1) throw new ArgumentOutOfRangeException(nameof(MaxRows), MaxRows, "MaxRows must be at least 1.");
        if (MaxResultBytes < 64) throw new ArgumentOutOfRangeException(nameof(MaxResultBytes), MaxResultBytes, "MaxResultBytes must be at least 64.");
        if (MaxValueChars < 8) throw new ArgumentOutOfRangeException(nameof(MaxValueChars), MaxValueChars, "MaxValueChars must be at least 8.");
        if (MaxValueBytes < 1024) throw new ArgumentOutOfRangeException(nameof(MaxValueBytes), MaxValueBytes, "MaxValueBytes must be at least 1024.");
        if (MaxSqlChars < 16) throw new ArgumentOutOfRangeException(nameof(MaxSqlChars), MaxSqlChars, "MaxSqlChars must be at least 16.");
        return this;
    }
}

/// <summary>
/// Runs model-written SQL on a SQLite file as a tool should: one read-only SELECT (SQLite's authorizer refuses
/// everything else, including ATTACH, PRAGMA writes, VACUUM INTO and extension loading), interrupted after a
/// time limit, with rows and bytes capped and the cap reported to the model ("first 50 of 240000 rows"). Every
/// failure comes back as a tool error object (<see cref="DemoTools.Error"/>), never as an exception, because
/// the model's SQL is untrusted input. Calls are serialised: one connection, one query at a time.
/// </summary>
public sealed class ReadOnlySqlTool : IDisposable
{
    // sqlite3_limit ids and authorizer action codes (sqlite3.h).
    const int LimitLength = 0, LimitSqlLength = 1, LimitAttached = 7;
    const int AuthOk = 0, AuthDeny = 1;
    const int ActionPragma = 19, ActionRead = 20, ActionSelect = 21, ActionFunction = 31, ActionRecursive = 33;

    // Pragmas that only describe the schema; any other pragma (and any pragma with a value to set) is refused.
    static readonly HashSet<string> SchemaPragmas = new(StringComparer.OrdinalIgnoreCase)
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    };

    static readonly HashSet<string> RefusedFunctions = new(StringComparer.OrdinalIgnoreCase) { "load_extension", "readfile", "writefile", "edit" };

    readonly SqliteConnection _connection;
    readonly sqlite3 _db;
    readonly Lock _lock = new();
    readonly strdelegate_authorizer _authorizer;
    readonly delegate_progress _progress;
    long _deadlineTicks;
    CancellationToken _cancellation;
    string? _refusal;

    public ReadOnlySqlTool(string databasePath, SqlToolLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        Limits = (limits ?? new SqlToolLimits()).Validate();
        if (!File.Exists(databasePath)) throw new FileNotFoundException($"SQLite database not found: {databasePath}", databasePath);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = databasePath, Mode = SqliteOpenMode.ReadOnly, Pooling = false,
        }.ToString());
        _connection.Open();
        _db = _connection.Handle!;
        raw.sqlite3_limit(_db, LimitLength, Limits.MaxValueBytes);
        raw.sqlite3_limit(_db, LimitSqlLength, Limits.MaxSqlChars * 4);
        raw.sqlite3_limit(_db, LimitAttached, 0);
        // Kept in fields: the native side holds only a handle to them.
        _authorizer = Authorize;
        _progress = Progress;
        raw.sqlite3_set_authorizer(_db, _authorizer, null);
        raw.sqlite3_progress_handler(_db, 1000, _progress, null);
    }

    public SqlToolLimits Limits { get; }

    /// <summary>Runs <paramref name="sql"/> and returns the tool result: a JSON array of rows, an object with the
    /// shown rows and a note when capped, or an error object.</summary>
    public string Run(string? sql, CancellationToken cancellationToken = default)
    {
        try
        {
            if (string.IsNullOrWhiteSpace(sql)) return DemoTools.Error("query is empty; give one SQLite SELECT statement");
            if (sql.Length > Limits.MaxSqlChars)
                return DemoTools.Error($"query is {sql.Length} characters; the limit is {Limits.MaxSqlChars}");
            lock (_lock) return RunLocked(sql, cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return DemoTools.Error(e.Message); // never thrown at the caller: the SQL is the model's
        }
        catch (OutOfMemoryException)
        {
            return DemoTools.Error("the query needs more memory than the tool allows");
        }
    }

    string RunLocked(string sql, CancellationToken cancellationToken)
    {
        _refusal = null;
        _cancellation = cancellationToken;
        _deadlineTicks = Stopwatch.GetTimestamp() + (long)(Limits.Timeout.TotalSeconds * Stopwatch.Frequency);
        int rc = raw.sqlite3_prepare_v2(_db, sql, out var statement, out string tail);
        using (statement)
        {
            if (rc != raw.SQLITE_OK) return Failure(rc);
            if (statement.IsInvalid) return DemoTools.Error("query holds no statement; give one SQLite SELECT statement");
            if (!IsBlank(tail)) return DemoTools.Error("only one statement is allowed per call; remove everything after the first ';'");
            if (raw.sqlite3_stmt_readonly(statement) == 0 || raw.sqlite3_column_count(statement) == 0)
                return DemoTools.Error("only a read-only SELECT is allowed");
            return ReadRows(statement);
        }
    }

    string ReadRows(sqlite3_stmt statement)
    {
        var shown = new List<IReadOnlyList<object?>>();
        long total = 0, bytes = 2;
        bool byteCapped = false;
        int columns = raw.sqlite3_column_count(statement);
        while (true)
        {
            int rc = raw.sqlite3_step(statement);
            if (rc == raw.SQLITE_DONE) break;
            if (rc != raw.SQLITE_ROW)
            {
                // Out of time while only counting rows we would not show: report what is known.
                if (rc == raw.SQLITE_INTERRUPT && _refusal is null && total > shown.Count && !_cancellation.IsCancellationRequested)
                    return Capped(shown, $"first {shown.Count} of more than {total} rows (counting stopped after {Seconds()})");
                return Failure(rc);
            }
            total++;
            if (shown.Count >= Limits.MaxRows || byteCapped) continue;
            var row = new object?[columns];
            for (int i = 0; i < columns; i++) row[i] = Value(statement, i);
            long size = JsonSerializer.SerializeToUtf8Bytes(row, CllmChatFormat.Json).Length + 1;
            if (bytes + size > Limits.MaxResultBytes) byteCapped = true;
            else
            {
                bytes += size;
                shown.Add(row);
            }
        }
        return total == shown.Count
            ? DemoTools.FormatRows(shown)
            : Capped(shown, $"first {shown.Count} of {total} rows" + (byteCapped ? $" ({Limits.MaxResultBytes} bytes shown at most)" : ""));
    }

    static string Capped(List<IReadOnlyList<object?>> shown, string note) =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["rows"] = shown, ["note"] = note }, CllmChatFormat.Json);

    object? Value(sqlite3_stmt statement, int column)
    {
        switch (raw.sqlite3_column_type(statement, column))
        {
            case raw.SQLITE_INTEGER:
                return raw.sqlite3_column_int64(statement, column);
            case raw.SQLITE_FLOAT:
                double d = raw.sqlite3_column_double(statement, column);
                return double.IsFinite(d) ? d : d.ToString(CultureInfo.InvariantCulture); // JSON has no NaN or Infinity
            case raw.SQLITE_TEXT:
                int length = raw.sqlite3_column_bytes(statement, column);
                string text = raw.sqlite3_column_text(statement, column).utf8_to_string();
                return text.Length <= Limits.MaxValueChars
                    ? text
                    : string.Concat(text.AsSpan(0, Limits.MaxValueChars), $"... ({length} bytes, cut)");
            case raw.SQLITE_BLOB:
                return $"<blob of {raw.sqlite3_column_bytes(statement, column)} bytes>";
            default:
                return null;
        }
    }

    string Failure(int rc)
    {
        if (_refusal is not null) return DemoTools.Error(_refusal);
        if (rc == raw.SQLITE_INTERRUPT)
            return DemoTools.Error(_cancellation.IsCancellationRequested
                ? "query cancelled"
                : $"query stopped after {Seconds()} (time limit); add a WHERE clause or LIMIT");
        if (rc == raw.SQLITE_TOOBIG)
            return DemoTools.Error($"a value would exceed {Limits.MaxValueBytes} bytes (the tool's limit)");
        string message = raw.sqlite3_errmsg(_db).utf8_to_string();
        return DemoTools.Error(string.IsNullOrEmpty(message) ? $"SQLite error {rc}" : message);
    }

    string Seconds() => Limits.Timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";

    int Progress(object userData) =>
        Stopwatch.GetTimestamp() > _deadlineTicks || _cancellation.IsCancellationRequested ? 1 : 0;

    int Authorize(object userData, int action, string param0, string param1, string dbName, string trigger)
    {
        switch (action)
        {
            case ActionSelect or ActionRead or ActionRecursive:
                return AuthOk;
            case ActionFunction when !RefusedFunctions.Contains(param1 ?? ""):
                return AuthOk;
            case ActionPragma when SchemaPragmas.Contains(param0 ?? ""):
                return AuthOk;
            case ActionPragma:
                _refusal = $"PRAGMA {param0} is not allowed; only schema pragmas ({string.Join(", ", SchemaPragmas)}) may be read";
                return AuthDeny;
            case ActionFunction:
                _refusal = $"the function {param1} is not allowed";
                return AuthDeny;
            default:
                _refusal = "only a read-only SELECT is allowed (writes, ATTACH, VACUUM, transactions and schema changes are refused)";
                return AuthDeny;
        }
    }

    static bool IsBlank(string? tail)
    {
        if (string.IsNullOrEmpty(tail)) return true;
        // A trailing comment is no statement.
        var text = new StringBuilder(tail.Trim());
        while (text.Length > 0)
        {
            var s = text.ToString();
            if (s.StartsWith("--", StringComparison.Ordinal))
            {
                int end = s.IndexOf('\n');
                text.Remove(0, end < 0 ? s.Length : end + 1);
            }
            else if (s.StartsWith("/*", StringComparison.Ordinal))
            {
                int end = s.IndexOf("*/", 2, StringComparison.Ordinal);
                if (end < 0) return true;
                text.Remove(0, end + 2);
            }
            else if (s[0] == ';') text.Remove(0, 1);
            else return false;
            var trimmed = text.ToString().Trim();
            text.Clear().Append(trimmed);
        }
        return true;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            raw.sqlite3_progress_handler(_db, 0, null, null);
            raw.sqlite3_set_authorizer(_db, (strdelegate_authorizer?)null, null);
            _connection.Dispose();
        }
    }
}
