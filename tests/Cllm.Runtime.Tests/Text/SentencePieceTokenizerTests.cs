using System.Text.Json;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

/// <summary>The built-in 4k SentencePiece model (src/Cllm.Runtime/Text/Assets/cllm-sp4k.model).</summary>
public sealed class SentencePieceTokenizerTests
{
    private const string OracleText =
        "Hello, world! The café in Zürich opened on 2024-03-15 at 09:30 — 42 people came. Naïve résumé: 3.14159 ≈ π; emoji 🦙🎉 and 日本語.";

    // Oracle: the reference SentencePiece implementation (Debian 12 sentencepiece 0.1.97), computed once with
    //   printf '%s\n' "$OracleText" | spm_encode --model=src/Cllm.Runtime/Text/Assets/cllm-sp4k.model --output_format=id
    // (≈, π, 🦙 and 日本語 are not in the model's pieces, so they come out as byte-fallback <0x..> ids.)
    private static readonly int[] OracleIds =
    [
        994, 2164, 3959, 3977, 3002, 4043, 362, 586, 3970, 4051, 289, 3955, 4038, 4058, 3963, 481, 2023, 272, 351, 3955,
        4006, 4004, 4006, 4024, 3979, 4004, 4021, 3979, 3998, 4028, 469, 3955, 4004, 4030, 4007, 4021, 4004, 3955, 4075, 3955,
        4024, 4006, 3266, 3959, 639, 270, 364, 3975, 585, 3960, 4070, 325, 656, 4051, 3962, 337, 4051, 4007, 3955, 4021,
        3975, 3998, 4024, 3998, 4028, 4030, 3955, 229, 140, 139, 3955, 210, 131, 4015, 901, 3959, 4017, 3958, 3955, 243,
        162, 169, 156, 4090, 305, 3955, 233, 154, 168, 233, 159, 175, 235, 173, 161, 3975,
    ];

    private readonly TextTokenizer _tok = TokenizerFixtures.LoadBuiltInSentencePiece();

    [Fact]
    public void IdsEqualSpmEncode()
    {
        Assert.Equal(OracleIds, _tok.Encode(OracleText, addSpecial: false));
        Assert.Equal([1, .. OracleIds], _tok.Encode(OracleText));
        Assert.Equal(OracleText, _tok.Decode(OracleIds));
    }

    [Fact]
    public void LlamaConventions()
    {
        Assert.Equal("sentencepiece", _tok.Kind);
        Assert.Equal(4096, _tok.VocabularySize);
        Assert.Equal(1, _tok.BosId);
        Assert.Equal([2], _tok.EosIds);
        Assert.True(_tok.AddBos);
        Assert.Equal("<unk>", _tok.IdToToken(0));
        Assert.Equal("<s>", _tok.IdToToken(1));
        Assert.Equal("</s>", _tok.IdToToken(2));
        Assert.Equal("<0xE2>", _tok.IdToToken(229)); // byte pieces follow the 3 control pieces
        Assert.Equal(3002, _tok.TokenToId("\u2581world"));
    }

    [Fact]
    public void ControlTokensWrittenInTextEncodeToSingleIds()
    {
        // spm_encode itself would spell "</s>" out; HF LLaMA tokenizers (and LLM prompts) treat it as the id.
        Assert.Equal([1, 261, 2, 3972], _tok.Encode("a</s>b"));
        Assert.Equal([1], _tok.Encode("<s>", addSpecial: false));
        Assert.Equal([0], _tok.Encode("<unk>", addSpecial: false));
        Assert.Equal("<s>a</s>b", _tok.Decode(_tok.Encode("a</s>b")));
        Assert.Equal("ab", _tok.Decode(_tok.Encode("a</s>b"), skipSpecial: true));
    }

    /// <summary>
    /// Hugging Face's legacy rule for tokenizer.model folders: legacy=true (the default when the config does
    /// not say) encodes the text after a special token as if it started a text, with SentencePiece's "▁";
    /// legacy=false (Cllm's own configs) only the start of the whole text gets it.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LegacyRuleDecidesTheSpaceAfterSpecialTokens(bool legacy)
    {
        using var dir = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(dir.Path);
        string config = File.ReadAllText(dir.File("tokenizer_config.json"));
        Assert.Contains("\"legacy\": false", config);
        File.WriteAllText(dir.File("tokenizer_config.json"), config.Replace("\"legacy\": false", $"\"legacy\": {(legacy ? "true" : "false")}"));
        var tok = TextTokenizer.Load(dir.Path);

        int[] ids = tok.Encode("world</s>world", addSpecial: false);
        int[] first = tok.Encode("world", addSpecial: false);
        Assert.Equal(first, ids[..first.Length]);
        Assert.Equal(2, ids[first.Length]);
        int[] after = ids[(first.Length + 1)..];
        if (legacy)
        {
            Assert.Equal(first, after);
        }

        Assert.Equal(legacy, tok.IdToToken(after[0])!.StartsWith('\u2581'));
        Assert.Equal(legacy ? "world</s> world" : "world</s>world", tok.Decode(ids));
    }

    [Fact]
    public void TheLeadingSpaceRuleMatchesSentencePiece()
    {
        // The dummy prefix "▁" is added on encode and dropped on decode, once, at the start only.
        int[] ids = _tok.Encode(" two leading", addSpecial: false);
        Assert.Equal(" two leading", _tok.Decode(ids));
        Assert.Equal("world world", _tok.Decode([3002, 3002]));
    }

    [Fact]
    public void BuiltInFolderHasAMatchingConfig()
    {
        using var dir = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(dir.Path);

        using var config = JsonDocument.Parse(File.ReadAllText(dir.File("tokenizer_config.json")));
        Assert.Equal("<s>", config.RootElement.GetProperty("bos_token").GetString());
        Assert.Equal("</s>", config.RootElement.GetProperty("eos_token").GetString());
        Assert.True(config.RootElement.GetProperty("add_bos_token").GetBoolean());

        using var embedded = BuiltInTokenizers.OpenSentencePiece4k();
        var copy = new MemoryStream();
        embedded.CopyTo(copy);
        Assert.Equal(copy.ToArray(), File.ReadAllBytes(dir.File(BuiltInTokenizers.SentencePiece4kFileName)));
        Assert.InRange(copy.Length, 10_000, 300_000);
    }
}
