using System.Text;
using Cllm.Text;

namespace Cllm.Chat;

/// <summary>What an assistant turn came to: text not yet returned by <see cref="TurnReader.Push"/>, and its tool calls.</summary>
/// <param name="Text">The rest of the text (empty when all was shown).</param>
/// <param name="ToolCalls">Calls with the names of offered tools (a name the model wrote is matched to one).</param>
/// <param name="MalformedToolCall">A call that does not parse; it is also part of <paramref name="Text"/>.</param>
/// <param name="JsonError">JSON output was asked for and the answer is not valid JSON: why (null otherwise).</param>
public sealed record TurnResult(string Text, IReadOnlyList<ToolCall> ToolCalls, string? MalformedToolCall, string? JsonError = null);

/// <summary>
/// Turns each forward pass's tokens into the text that is safe to show, and the turn's tool calls at the end.
/// Stop texts are matched on the decoded text across token boundaries and never shown; only the longest tail
/// that could still begin a stop text (or a tool call's marker) is held back. From a tool call's marker on,
/// text is kept aside and parsed by <see cref="Finish"/>. With JSON output the turn ends with the first
/// complete object or array. Not thread-safe: one reader per turn.
/// </summary>
public sealed class TurnReader
{
    readonly PreparedTurn _turn;
    readonly StreamingDetokenizer _detokenizer;
    readonly HashSet<int> _stopIds;
    readonly string? _toolStart;
    readonly string[] _markers;
    readonly StringBuilder _pending = new();
    readonly StringBuilder _shown = new();
    readonly JsonValueScanner? _json;
    StringBuilder? _call;

    internal TurnReader(PreparedTurn turn)
    {
        _turn = turn;
        _detokenizer = turn.Tokenizer.CreateStreamingDetokenizer(skipSpecial: false); // keeps markers such as <tool_call>
        _stopIds = [.. turn.Stops.Ids];
        _toolStart = turn.Request.Tools.Count > 0 ? turn.Format.ToolCallStart : null;
        _markers = _toolStart is null ? [.. turn.Stops.Texts] : [.. turn.Stops.Texts, _toolStart];
        _json = turn.Request.JsonOutput ? new JsonValueScanner() : null;
        _call = turn.ForcedPrefix is { } prefix ? new StringBuilder(prefix) : null;
    }

    /// <summary>A stop id or text (or the end of a JSON answer) was read: generation can end.</summary>
    public bool Ended { get; private set; }

    /// <summary>All text returned so far.</summary>
    public string Text => _shown.ToString();

    /// <summary>The text of <paramref name="tokens"/> that can be shown now (stop ids are not text).</summary>
    public string Push(IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (Ended) return "";
        int stop = -1;
        for (int i = 0; i < tokens.Count && stop < 0; i++)
            if (_stopIds.Contains(tokens[i])) stop = i;
        if (stop < 0) return Accept(_detokenizer.Append([.. tokens]), final: false);
        // A stop id ends the turn (the decoder stops there too); it is not text, and nothing after it is.
        string text = Accept(_detokenizer.Append([.. tokens.Take(stop)]), final: false) + Accept(_detokenizer.Flush(), final: true);
        Ended = true;
        return text;
    }

    /// <summary>The rest of the text and the turn's tool calls.</summary>
    public TurnResult Finish()
    {
        string text = Ended ? "" : Accept(_detokenizer.Flush(), final: true);
        if (_call is null) return new TurnResult(text, [], null, _json is null ? null : JsonError(_shown.ToString()));
        string raw = _call.ToString();
        var parsed = _turn.Format.ParseToolCalls(raw);
        if (parsed is null || parsed.Count == 0)
        {
            _shown.Append(raw);
            return new TurnResult(text + raw, [], raw);
        }

        var calls = (_turn.Request.AllowMultipleToolCalls ? parsed : parsed.Take(1))
            .Select(c => c with { Name = ResolveName(c.Name) }).ToList();
        return new TurnResult(text, calls, null);
    }

    string Accept(string piece, bool final)
    {
        if (_call is not null)
        {
            _call.Append(piece);
            return "";
        }

        _pending.Append(piece);
        string pending = _pending.ToString();
        var (at, marker) = FirstMarker(pending);
        string show;
        if (marker is not null)
        {
            show = pending[..at];
            if (marker == _toolStart) _call = new StringBuilder(pending[at..]);
            else Ended = true;
            _pending.Clear();
        }
        else
        {
            int hold = final ? 0 : HeldBack(pending);
            show = pending[..^hold];
            _pending.Remove(0, pending.Length - hold);
        }

        if (_json?.Feed(show) is int end and >= 0)
        {
            show = show[..end];
            Ended = true;
        }

        _shown.Append(show);
        return show;
    }

    static string? JsonError(string text)
    {
        try
        {
            using var _ = System.Text.Json.JsonDocument.Parse(text);
            return null;
        }
        catch (System.Text.Json.JsonException e)
        {
            return e.Message;
        }
    }

    (int At, string? Marker) FirstMarker(string text)
    {
        (int At, string? Marker) best = (int.MaxValue, null);
        foreach (var marker in _markers)
        {
            int at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0 && at < best.At) best = (at, marker);
        }

        return best;
    }

    // The longest suffix of text that is a proper prefix of a marker.
    int HeldBack(string text)
    {
        int hold = 0;
        foreach (var marker in _markers)
        {
            for (int n = Math.Min(marker.Length - 1, text.Length); n > hold; n--)
            {
                if (text.AsSpan(text.Length - n).SequenceEqual(marker.AsSpan(0, n)))
                {
                    hold = n;
                    break;
                }
            }
        }

        return hold;
    }

    // An offered tool's name: exact, else the one name it matches ignoring case or as the end after '_', '-' or '.'
    // (a model that drops a plugin prefix). An unknown name stays, so the caller can report it to the model.
    string ResolveName(string name)
    {
        var tools = _turn.Request.Tools;
        if (tools.Any(t => t.Name == name)) return name;
        var matches = tools.Select(t => t.Name).Where(n => n.Equals(name, StringComparison.OrdinalIgnoreCase) ||
            n.Length > name.Length && n.EndsWith(name, StringComparison.OrdinalIgnoreCase) && n[^(name.Length + 1)] is '_' or '-' or '.').ToList();
        return matches.Count == 1 ? matches[0] : name;
    }
}
