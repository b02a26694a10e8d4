using Cllm.Text;

namespace Cllm.Tests.Text;

/// <summary>The real tokenizer files the Text tests run on, and the texts they run through them.</summary>
internal static class TokenizerFixtures
{
    public static readonly string[] Kinds = [TextTokenizer.SentencePieceKind, TextTokenizer.BpeKind, TextTokenizer.TiktokenKind];

    /// <summary>Varied NFC text: ASCII, whitespace runs, digits, punctuation, accents, emoji (incl. ZWJ), CJK.</summary>
    public static readonly string[] Texts =
    [
        "Hello, world!",
        " leading space,  double  spaces,\ttabs\nand new lines\n\n",
        "Café, naïve résumé in Zürich, São Paulo, Łódź and Dvořák's Ångström.",
        "Numbers 1234567890, 3.14159, -42, 1e-9 and 2024-03-15T09:30:00Z.",
        "Emoji 🦙🎉👍🏽 👨‍👩‍👧 ✨ — “quoted” ‘text’ … ≈ π ∑",
        "日本語のテキスト、中文，한국어, Ελληνικά, русский, العربية",
        "code: if (x >= 10 && y != 0) { return x / y; } // done\r\n",
        "   ",
        "",
        "x",
        "🦙",
    ];

    public static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static TextTokenizer Load(string kind) => kind switch
    {
        TextTokenizer.SentencePieceKind => LoadBuiltInSentencePiece(),
        TextTokenizer.BpeKind => TextTokenizer.Load(Folder("bpe")),
        TextTokenizer.TiktokenKind => TextTokenizer.Load(Folder("tiktoken")),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The 4k SentencePiece model embedded in Cllm.Runtime, written to a folder the way `cllm init` does.</summary>
    public static TextTokenizer LoadBuiltInSentencePiece()
    {
        using var dir = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(dir.Path);
        return TextTokenizer.Load(dir.Path); // Load reads everything, so the folder can go.
    }
}
