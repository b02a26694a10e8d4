using System.Text;

namespace Cllm.Text;

/// <summary>
/// tiktoken vocabulary files ("base64(token bytes) rank" per line), as in LLaMA-3's
/// <c>original/tokenizer.model</c>. Special tokens are not in the file: LLaMA-3 appends 256 of them
/// after the last rank.
/// </summary>
internal static class TiktokenFile
{
    /// <summary>LLaMA-3's pre-tokenizer pattern (digits in runs of at most three).</summary>
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// LLaMA-3's special tokens in id order starting right after the last rank, used when no
    /// tokenizer_config.json lists them. (LLaMA-3.1 renamed a few reserved slots; its folders ship a
    /// tokenizer_config.json, which takes precedence.)
    /// </summary>
    public static IReadOnlyList<string> Llama3SpecialTokens { get; } = BuildLlama3Specials();

    /// <summary>Content sniffing: a SentencePiece protobuf never starts with a "base64 number" text line.</summary>
    public static bool LooksLikeTiktoken(ReadOnlySpan<byte> content)
    {
        int end = content.IndexOf((byte)'\n');
        var line = end < 0 ? content : content[..end];
        return TryParseLine(line.TrimEnd((byte)'\r'), out _, out _);
    }

    /// <summary>All ranks with their bytes; throws naming the file and line when a line is malformed.</summary>
    public static Dictionary<int, byte[]> ReadRanks(string path, ReadOnlySpan<byte> content)
    {
        var ranks = new Dictionary<int, byte[]>();
        int lineNo = 0;
        while (!content.IsEmpty)
        {
            lineNo++;
            int end = content.IndexOf((byte)'\n');
            var line = (end < 0 ? content : content[..end]).TrimEnd((byte)'\r');
            content = end < 0 ? default : content[(end + 1)..];
            if (line.IsEmpty)
            {
                continue;
            }

            if (!TryParseLine(line, out var bytes, out int rank))
            {
                throw new InvalidDataException($"'{path}' line {lineNo} is not \"base64 rank\": the tiktoken file is corrupt.");
            }

            if (!ranks.TryAdd(rank, bytes))
            {
                throw new InvalidDataException($"'{path}' line {lineNo} repeats rank {rank}: the tiktoken file is corrupt.");
            }
        }

        if (ranks.Count == 0)
        {
            throw new InvalidDataException($"'{path}' has no ranks: the tiktoken file is empty.");
        }

        return ranks;
    }

    private static bool TryParseLine(ReadOnlySpan<byte> line, out byte[] bytes, out int rank)
    {
        bytes = [];
        rank = -1;
        int space = line.IndexOf((byte)' ');
        if (space <= 0 || space == line.Length - 1)
        {
            return false;
        }

        string b64 = Encoding.ASCII.GetString(line[..space]);
        string number = Encoding.ASCII.GetString(line[(space + 1)..]);
        var buffer = new byte[b64.Length];
        if (!Convert.TryFromBase64String(b64, buffer, out int written) || written == 0 ||
            !int.TryParse(number, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out rank))
        {
            return false;
        }

        bytes = buffer[..written];
        return true;
    }

    private static string[] BuildLlama3Specials()
    {
        var names = new List<string>
        {
            "<|begin_of_text|>", "<|end_of_text|>",
            "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
            "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
            "<|start_header_id|>", "<|end_header_id|>",
            "<|reserved_special_token_4|>", "<|eot_id|>",
        };
        for (int i = 5; names.Count < 256; i++)
        {
            names.Add($"<|reserved_special_token_{i}|>");
        }

        return [.. names];
    }
}
