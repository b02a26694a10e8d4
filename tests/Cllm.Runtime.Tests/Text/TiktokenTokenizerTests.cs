using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

/// <summary>
/// A LLaMA-3-style folder with only original/tokenizer.model in tiktoken format (Fixtures/tiktoken, the BPE
/// fixture's vocabulary written as "base64(bytes) rank" lines by scripts/make-bpe-fixture.py).
/// </summary>
public sealed class TiktokenTokenizerTests
{
    private const int BaseRanks = 856; // ranks 0..855 in the file; LLaMA-3's 256 special tokens follow

    private readonly TextTokenizer _tok = TextTokenizer.Load(TokenizerFixtures.Folder("tiktoken"));

    [Fact]
    public void Llama3SpecialTokensFollowTheRanks()
    {
        Assert.Equal("tiktoken", _tok.Kind);
        Assert.Equal(BaseRanks + 256, _tok.VocabularySize);
        Assert.Equal(BaseRanks, _tok.BosId);
        Assert.True(_tok.AddBos);
        Assert.Equal([BaseRanks + 1, BaseRanks + 9], _tok.EosIds); // <|end_of_text|>, <|eot_id|>
        Assert.Equal("<|start_header_id|>", _tok.IdToToken(BaseRanks + 6));
        Assert.Equal("<|reserved_special_token_250|>", _tok.IdToToken(BaseRanks + 255));
    }

    [Fact]
    public void ChatHeaderTokensEncodeToSingleIds()
    {
        const string prompt = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>";
        int[] ids = _tok.Encode(prompt, addSpecial: false);

        Assert.Equal([BaseRanks, BaseRanks + 6], ids[..2]);
        Assert.Equal(BaseRanks + 9, ids[^1]);
        Assert.Equal(prompt, _tok.Decode(ids));
        Assert.Equal("user\n\nHi there", _tok.Decode(ids, skipSpecial: true));
    }

    [Fact]
    public void RanksGiveTheSameTokensAsTheMergesTheyCameFrom()
    {
        // Same vocabulary, two algorithms: tiktoken merges by rank, tokenizer.json by merge list. The
        // pre-tokenizers differ only on digit runs (LLaMA-3 \p{N}{1,3}, Qwen2 \p{N}), so texts without
        // adjacent digits must give identical ids, and ids must have the same names.
        var bpe = TextTokenizer.Load(TokenizerFixtures.Folder("bpe"));
        string[] texts =
        [
            "This License applies to any program or other work which contains a notice.",
            "Café, naïve résumé in Zürich — “quoted” … 🦙🎉",
            "  indented\tcode: if (x >= 1 && y != 0) { return x / y; }\n\n",
        ];
        foreach (string text in texts)
        {
            Assert.Equal(bpe.Encode(text, addSpecial: false), _tok.Encode(text, addSpecial: false));
        }

        for (int id = 0; id < BaseRanks; id++)
        {
            Assert.Equal(bpe.IdToToken(id), _tok.IdToToken(id));
        }
    }
}
