using System.Text;

namespace Cllm.Text;

/// <summary>
/// GPT-2's reversible byte-to-character table used by byte-level BPE vocabularies ("Ġ" is the space
/// byte). tiktoken files store raw bytes instead, so this gives tiktoken tokens the same printable
/// names a Hugging Face tokenizer.json would use for them.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = ByteToChar.Select((c, b) => (c, b)).ToDictionary(x => x.c, x => (byte)x.b);

    /// <summary>The byte a byte-level symbol stands for; false for characters outside the table.</summary>
    public static bool TryGetByte(char symbol, out byte value) => CharToByte.TryGetValue(symbol, out value);

    public static string ToTokenString(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            sb.Append(ByteToChar[b]);
        }

        return sb.ToString();
    }

    /// <summary>The raw bytes a byte-level token string stands for; false when a character is outside the table
    /// (an added token's plain text).</summary>
    public static bool TryToBytes(string token, out byte[] bytes)
    {
        bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            char c = token[i];
            int b = c < CharToByteIndex.Length ? CharToByteIndex[c] : -1;
            if (b < 0)
            {
                return false;
            }

            bytes[i] = (byte)b;
        }

        return true;
    }

    private static readonly int[] CharToByteIndex = BuildInverse();

    private static int[] BuildInverse()
    {
        var inverse = new int[0x200];
        Array.Fill(inverse, -1);
        for (int b = 0; b < 256; b++)
        {
            inverse[ByteToChar[b]] = b;
        }

        return inverse;
    }

    private static char[] BuildTable()
    {
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes take U+0100.. in byte order.
        var table = new char[256];
        int next = 0x100;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }

        return table;
    }
}
