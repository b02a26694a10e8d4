namespace Cllm.Chat;

/// <summary>Finds where a top-level JSON object or array ends in text fed piece by piece.</summary>
internal sealed class JsonValueScanner
{
    int _depth;
    bool _started, _inString, _escaped, _done;

    /// <summary>The length of the piece up to and including the value's closing bracket; -1 while it is still open
    /// (or when the text is not an object or array, which is left to the caller).</summary>
    public int Feed(string piece)
    {
        for (int i = 0; i < piece.Length && !_done; i++)
        {
            char c = piece[i];
            if (!_started)
            {
                if (char.IsWhiteSpace(c)) continue;
                if (c is not ('{' or '[')) _done = true;
                _started = true;
            }

            if (_inString)
            {
                if (_escaped) _escaped = false;
                else if (c == '\\') _escaped = true;
                else if (c == '"') _inString = false;
            }
            else if (c == '"') _inString = true;
            else if (c is '{' or '[') _depth++;
            else if (c is '}' or ']' && --_depth == 0)
            {
                _done = true;
                return i + 1;
            }
        }

        return -1;
    }
}
