using System.Text.Json.Nodes;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

/// <summary>
/// Hugging Face tokenizer.json byte-level BPE (Fixtures/bpe, made by scripts/make-bpe-fixture.py: Qwen2-style
/// Split regex + ByteLevel, NFC normalizer, 600 merges, &lt;|endoftext|&gt; &lt;|im_start|&gt; &lt;|im_end|&gt;).
/// </summary>
public sealed class ByteLevelBpeTokenizerTests
{
    private const int EndOfText = 856, ImStart = 857, ImEnd = 858;

    private readonly TextTokenizer _tok = TextTokenizer.Load(TokenizerFixtures.Folder("bpe"));

    [Fact]
    public void ConfigIsReadLikeQwen2()
    {
        Assert.Equal("bpe", _tok.Kind);
        Assert.Equal(859, _tok.VocabularySize);
        Assert.Null(_tok.BosId);
        Assert.False(_tok.AddBos);
        // eos_token (an AddedToken object) first, then generation_config.json's extra stop id.
        Assert.Equal([ImEnd, EndOfText], _tok.EosIds);
    }

    [Fact]
    public void ChatMarkersEncodeToSingleIds()
    {
        const string chat = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n";
        int[] ids = _tok.Encode(chat);

        Assert.Equal(ImStart, ids[0]);
        Assert.Equal(2, ids.Count(id => id == ImStart));
        Assert.Equal(2, ids.Count(id => id == ImEnd));
        Assert.Equal(chat, _tok.Decode(ids));
        Assert.Equal("system\nYou are helpful.\nuser\nHi!\n", _tok.Decode(ids, skipSpecial: true));
        Assert.Equal([EndOfText], _tok.Encode("<|endoftext|>"));
        Assert.Equal("<|im_start|>", _tok.IdToToken(ImStart));
    }

    [Fact]
    public void BytesMapToTheGpt2Alphabet()
    {
        // The fixture gives byte b the id b, spelled in GPT-2's byte alphabet ("Ġ" = space, "Ċ" = newline).
        Assert.Equal("Ġ", _tok.IdToToken(' '));
        Assert.Equal("Ċ", _tok.IdToToken('\n'));
        Assert.Equal([' ', 0xF0, 0x9F, 0xA6, 0x99], _tok.Encode(" 🦙"));
    }

    [Fact]
    public void NfcNormalizerFoldsDecomposedAccents()
    {
        Assert.Equal(_tok.Encode("caf\u00E9"), _tok.Encode("cafe\u0301"));
    }

    [Fact]
    public void PreTokenizerKeepsWordsApartLikeTheQwen2Regex()
    {
        // Digits are split one by one (\p{N}), and a space sticks to the following word, never the previous one.
        foreach (int id in _tok.Encode("2024 years and counting", addSpecial: false))
        {
            string token = _tok.IdToToken(id)!;
            Assert.False(token.Length > 1 && token.EndsWith('Ġ'), token);
            Assert.False(token.Any(char.IsDigit) && token.Length > 1, token);
        }
    }

    [Fact]
    public void OlderStringMergesReadTheSameAsPairMerges()
    {
        // tokenizers < 0.20 wrote merges as "a b" strings; rewrite the fixture that way and compare.
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TokenizerFixtures.Folder("bpe"), "tokenizer.json")))!;
        var merges = json["model"]!["merges"]!.AsArray();
        var asStrings = new JsonArray(merges.Select(m => (JsonNode)JsonValue.Create($"{m![0]} {m[1]}")).ToArray());
        json["model"]!["merges"] = asStrings;

        using var dir = new TempFolder();
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        var old = TextTokenizer.Load(dir.Path);

        foreach (string text in TokenizerFixtures.Texts)
        {
            Assert.Equal(_tok.Encode(text), old.Encode(text));
        }
    }
}
