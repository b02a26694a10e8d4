using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

/// <summary>Behaviour every tokenizer kind shares.</summary>
public sealed class TextTokenizerTests
{
    public static TheoryData<string> Kinds() => [.. TokenizerFixtures.Kinds];

    public static TheoryData<string, int> KindsAndTexts()
    {
        var data = new TheoryData<string, int>();
        foreach (string kind in TokenizerFixtures.Kinds)
        {
            for (int i = 0; i < TokenizerFixtures.Texts.Length; i++)
            {
                data.Add(kind, i);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KindsAndTexts))]
    public void DecodeOfEncodeGivesTheTextBack(string kind, int textIndex)
    {
        var tok = TokenizerFixtures.Load(kind);
        string text = TokenizerFixtures.Texts[textIndex];

        Assert.Equal(text, tok.Decode(tok.Encode(text, addSpecial: false)));
        Assert.Equal(text, tok.Decode(tok.Encode(text), skipSpecial: true));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EncodePutsBosInFrontOnlyWhenTheModelWantsIt(string kind)
    {
        var tok = TokenizerFixtures.Load(kind);
        int[] with = tok.Encode("Hello world");
        int[] without = tok.Encode("Hello world", addSpecial: false);

        if (tok.AddBos)
        {
            Assert.Equal(tok.BosId, with[0]);
            Assert.Equal(without, with[1..]);
        }
        else
        {
            Assert.Equal(without, with);
        }

        Assert.DoesNotContain(tok.BosId ?? -1, without);
        Assert.All(with, id => Assert.InRange(id, 0, tok.VocabularySize - 1));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TokenStringsAndIdsMapBothWays(string kind)
    {
        var tok = TokenizerFixtures.Load(kind);
        foreach (int id in tok.Encode("Hello, café 🦙 2024!"))
        {
            string? token = tok.IdToToken(id);
            Assert.NotNull(token);
            Assert.Equal(id, tok.TokenToId(token!));
        }

        foreach (int eos in tok.EosIds)
        {
            Assert.Equal(eos, tok.TokenToId(tok.IdToToken(eos)!));
        }

        Assert.Null(tok.IdToToken(tok.VocabularySize + 5));
        Assert.Null(tok.TokenToId("no such token \u0001"));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EosTokensWrittenInTextEncodeToTheirSingleId(string kind)
    {
        var tok = TokenizerFixtures.Load(kind);
        foreach (int eos in tok.EosIds)
        {
            string text = tok.IdToToken(eos)!;
            Assert.Equal([eos], tok.Encode(text, addSpecial: false));

            int[] ids = tok.Encode("before" + text + "after", addSpecial: false);
            Assert.Single(ids, eos);
            Assert.Equal("before" + text + "after", tok.Decode(ids));
            Assert.Equal("beforeafter", tok.Decode(ids, skipSpecial: true));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void KindNamesTheFormatOfTheFile(string kind)
    {
        var tok = TokenizerFixtures.Load(kind);
        Assert.Equal(kind, tok.Kind);
        Assert.NotEmpty(tok.Encode("plain words here", addSpecial: false));
    }
}
