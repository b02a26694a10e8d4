namespace Cllm.Constraints;

/// <summary>Where a constrained JSON value may hold whitespace between its tokens.</summary>
public enum JsonWhitespace
{
    /// <summary>One optional space after ':' and after ',' and nowhere else: <c>{"a": 1, "b": [1, 2]}</c>, the
    /// form of Python's json.dumps and of the tool calls in the default model's and ChatML's training data.
    /// The default: a model can follow its habit, and cannot spend its budget on blank space.</summary>
    Spaced,
    /// <summary>No whitespace at all: <c>{"a":1,"b":[1,2]}</c>.</summary>
    Compact,
    /// <summary>Up to 32 whitespace characters (space, tab, CR, LF) at every place JSON allows them, so
    /// pretty-printed output fits.</summary>
    Free,
}

/// <summary>The places between JSON tokens, for <see cref="JsonWhitespace"/>.</summary>
enum Gap { AfterOpen, BeforeColon, AfterColon, AfterValue, AfterComma }

static class WhitespaceRules
{
    const int FreeRun = 32;

    /// <summary>Whether <paramref name="b"/> may follow <paramref name="used"/> whitespace bytes at <paramref name="gap"/>.</summary>
    public static bool Allows(this JsonWhitespace policy, Gap gap, int used, byte b) => policy switch
    {
        JsonWhitespace.Spaced => b == (byte)' ' && used == 0 && gap is Gap.AfterColon or Gap.AfterComma,
        JsonWhitespace.Free => used < FreeRun && b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r',
        _ => false,
    };
}
