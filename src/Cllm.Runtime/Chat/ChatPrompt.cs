using System.Text;
using Cllm.Text;

namespace Cllm.Chat;

/// <summary>A piece of a rendered prompt: the chat format's own text (markers, role headers) or message text.</summary>
public readonly record struct PromptSegment(string Text, bool IsControl);

/// <summary>
/// A rendered conversation that remembers which text the chat format wrote and which came from messages and
/// tools. <see cref="Encode"/> lets only the format's own markers become control tokens: message, tool and
/// result text is encoded with special-token parsing off, so a forged <c>&lt;|end|&gt;\n&lt;|system|&gt;</c> in a
/// user message or a tool result stays ordinary text and cannot open a turn of another role.
/// </summary>
public sealed class ChatPrompt
{
    internal ChatPrompt(IReadOnlyList<PromptSegment> segments) => Segments = segments;

    public IReadOnlyList<PromptSegment> Segments { get; }

    /// <summary>The prompt as one string (what <see cref="IChatFormat.Render"/> returns).</summary>
    public string Text => string.Concat(Segments.Select(s => s.Text));

    public override string ToString() => Text;

    /// <summary>This prompt followed by more of the format's own text (e.g. a forced tool-call opening).</summary>
    public ChatPrompt Append(PromptSegment segment) => new([.. Segments, segment]);

    /// <summary>
    /// Ids for the model. Control text is scanned for the tokenizer's special tokens, which become their ids;
    /// everything between two of them (control text and message text alike) is encoded as one run with
    /// special-token parsing off. For prompts whose messages hold no markers this gives exactly
    /// <c>tokenizer.Encode(Text, addBos)</c>, since the tokenizer splits on special tokens the same way.
    /// </summary>
    public int[] Encode(TextTokenizer tokenizer, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>();
        if (addBos && tokenizer.AddBos) ids.Add(tokenizer.BosId!.Value);
        var run = new StringBuilder();
        bool firstRun = true;
        void Flush()
        {
            if (run.Length == 0) return;
            ids.AddRange(tokenizer.EncodeOrdinary(run.ToString(), startsText: firstRun));
            firstRun = false;
            run.Clear();
        }

        foreach (var segment in Segments)
        {
            if (!segment.IsControl)
            {
                run.Append(segment.Text);
                continue;
            }

            string text = segment.Text;
            for (int i = 0; i < text.Length;)
            {
                if (LongestSpecial(tokenizer, text, i) is { } special)
                {
                    Flush();
                    ids.Add(special.Id);
                    firstRun = false; // text after a marker is not the start of the input (no SentencePiece dummy prefix)
                    i += special.Length;
                }
                else
                {
                    run.Append(text[i++]);
                }
            }
        }

        Flush();
        return [.. ids];
    }

    static (int Id, int Length)? LongestSpecial(TextTokenizer tokenizer, string text, int at)
    {
        (int Id, int Length)? best = null;
        foreach (var (token, id) in tokenizer.SpecialTokens)
        {
            if (token.Length > (best?.Length ?? 0) && text.AsSpan(at).StartsWith(token, StringComparison.Ordinal))
                best = (id, token.Length);
        }

        return best;
    }
}

/// <summary>Collects a prompt's segments as a chat format writes it; adjacent segments of one kind are merged.</summary>
public sealed class ChatPromptBuilder
{
    readonly List<PromptSegment> _segments = [];

    /// <summary>The format's own text: markers and role headers, which may hold special tokens.</summary>
    public ChatPromptBuilder Control(string text) => Add(text, isControl: true);

    /// <summary>Message, tool or result text: never parsed for special tokens.</summary>
    public ChatPromptBuilder Content(string text) => Add(text, isControl: false);

    public ChatPrompt Build() => new([.. _segments]);

    ChatPromptBuilder Add(string text, bool isControl)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return this;
        if (_segments.Count > 0 && _segments[^1].IsControl == isControl)
            _segments[^1] = new PromptSegment(_segments[^1].Text + text, isControl);
        else
            _segments.Add(new PromptSegment(text, isControl));
        return this;
    }
}
