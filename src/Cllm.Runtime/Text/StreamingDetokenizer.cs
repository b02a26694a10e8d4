namespace Cllm.Text;

/// <summary>
/// Turns generated ids into text as they arrive. Concatenating every <see cref="Append(ReadOnlySpan{int})"/>
/// result and the final <see cref="Flush"/> gives exactly <c>Decode(allIds, skipSpecial)</c>.
/// </summary>
/// <remarks>
/// Works on a small window of ids that starts at the last point where all text was out and complete:
/// it decodes the window with the tokenizer's own Decode and returns the part not yet returned, except
/// a trailing U+FFFD. A trailing U+FFFD is what the decoder makes of a character whose UTF-8 bytes
/// are still incomplete (byte-fallback pieces, partial byte-level tokens); only the last one can still
/// change, earlier ones are final. When nothing is held back the window is emptied, so each call
/// decodes only the few ids since then. (A stream of nothing but undecodable bytes keeps the window
/// growing until a decodable character arrives; that only happens with a broken model.)
/// For SentencePiece, whose decoder drops the leading space of the first piece of a sequence, windows
/// after the first ordinary piece are decoded behind a guard piece so they read as mid-sequence text.
/// </remarks>
public sealed class StreamingDetokenizer
{
    private readonly TextTokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly List<int> _window = [];
    private readonly int _guardLength;
    private readonly string _probeText = "";

    private int _emitted;     // chars of the window's decoded text already returned
    private bool _midSequence; // windows can be decoded independently of what came before them

    internal StreamingDetokenizer(TextTokenizer tokenizer, bool skipSpecial)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecial;
        if (tokenizer.StreamGuard is { } g)
        {
            _guardLength = tokenizer.Decode([g.GuardId], skipSpecial).Length;
            _probeText = tokenizer.Decode([g.GuardId, g.ProbeId], skipSpecial)[_guardLength..];
        }
    }

    /// <summary>Ids decoded on each call (for tests of the bounded cost).</summary>
    internal int WindowLength => _window.Count;

    /// <summary>Adds ids and returns the text they complete (possibly empty).</summary>
    public string Append(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty)
        {
            return "";
        }

        foreach (int id in ids)
        {
            _window.Add(id);
        }

        string text = DecodeWindow();
        bool holding = text.Length > 0 && text[^1] == '\uFFFD';
        int stable = holding ? text.Length - 1 : text.Length;
        string output = stable > _emitted ? text[_emitted..stable] : "";
        _emitted = Math.Max(_emitted, stable);
        if (!holding)
        {
            TryRestartWindow(text);
        }

        return output;
    }

    /// <summary>Adds one id and returns the text it completes (possibly empty).</summary>
    public string Append(int id) => Append([id]);

    /// <summary>Returns whatever is left (e.g. an incomplete character as U+FFFD) and starts a new sequence.</summary>
    public string Flush()
    {
        string text = DecodeWindow();
        string rest = text.Length > _emitted ? text[_emitted..] : "";
        _window.Clear();
        _emitted = 0;
        _midSequence = false;
        return rest;
    }

    private string DecodeWindow()
    {
        if (_midSequence && _tokenizer.StreamGuard is { } g)
        {
            return _tokenizer.Decode(_window.Prepend(g.GuardId), _skipSpecial)[_guardLength..];
        }

        return _tokenizer.Decode(_window, _skipSpecial);
    }

    private void TryRestartWindow(string text)
    {
        if (!_midSequence)
        {
            if (_tokenizer.Kind != TextTokenizer.SentencePieceKind)
            {
                // Byte-level decoders have no start-of-sequence rule: a window that starts on a
                // character boundary decodes the same alone as in context.
                _midSequence = true;
            }
            else if (_tokenizer.StreamGuard is { } g)
            {
                // Past the first ordinary piece once a "▁"-piece appended now would keep its space.
                _midSequence = _tokenizer.Decode([.. _window, g.ProbeId], _skipSpecial) == text + _probeText;
            }

            if (!_midSequence)
            {
                // Still before the first ordinary piece (or a vocabulary without a guard piece, which
                // costs only speed): keep decoding from the start of the sequence.
                return;
            }
        }

        _window.Clear();
        _emitted = 0;
    }
}
