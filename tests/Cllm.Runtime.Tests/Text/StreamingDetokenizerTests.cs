using System.Text;
using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

public sealed class StreamingDetokenizerTests
{
    private const char Replacement = '\uFFFD';

    public static TheoryData<string, bool> KindsAndSkip()
    {
        var data = new TheoryData<string, bool>();
        foreach (string kind in TokenizerFixtures.Kinds)
        {
            data.Add(kind, true);
            data.Add(kind, false);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KindsAndSkip))]
    public void OneIdAtATimeReproducesDecodeWithoutReplacementCharacters(string kind, bool skipSpecial)
    {
        var tok = TokenizerFixtures.Load(kind);
        foreach (string text in TokenizerFixtures.Texts)
        {
            int[] ids = tok.Encode(text);
            var stream = tok.CreateStreamingDetokenizer(skipSpecial);
            var output = new StringBuilder();
            foreach (int id in ids)
            {
                string piece = stream.Append(id);
                Assert.DoesNotContain(Replacement, piece);
                output.Append(piece);
            }

            // Everything was complete, so nothing may be left for Flush.
            Assert.Equal("", stream.Flush());
            Assert.Equal(tok.Decode(ids, skipSpecial), output.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndSkip))]
    public void RandomChunksReproduceDecode(string kind, bool skipSpecial)
    {
        var tok = TokenizerFixtures.Load(kind);
        string all = string.Concat(TokenizerFixtures.Texts);
        int[] ids = [.. tok.Encode(all), .. tok.EosIds, .. tok.Encode("after the end 🦙", addSpecial: false)];
        string expected = tok.Decode(ids, skipSpecial);

        for (int seed = 0; seed < 20; seed++)
        {
            var random = new Random(seed);
            var stream = tok.CreateStreamingDetokenizer(skipSpecial);
            var output = new StringBuilder();
            for (int i = 0; i < ids.Length;)
            {
                int n = Math.Min(random.Next(0, 6), ids.Length - i);
                string piece = stream.Append(ids.AsSpan(i, n));
                Assert.DoesNotContain(Replacement, piece);
                output.Append(piece);
                i += n;
            }

            output.Append(stream.Flush());
            Assert.Equal(expected, output.ToString());
        }
    }

    [Fact]
    public void ByteFallbackCharacterAppearsWhenItsLastByteArrives()
    {
        var tok = TokenizerFixtures.LoadBuiltInSentencePiece();
        int[] ids = tok.Encode("x \U0001F999", addSpecial: false); // ▁x ▁ <0xF0> <0x9F> <0xA6> <0x99>
        Assert.Equal(["\u2581x", "\u2581", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"], ids.Select(id => tok.IdToToken(id)));

        var stream = tok.CreateStreamingDetokenizer();
        Assert.Equal("x", stream.Append(ids[0]));  // the dummy-prefix space goes, as in Decode
        Assert.Equal(" ", stream.Append(ids[1]));
        Assert.Equal("", stream.Append(ids[2]));
        Assert.Equal("", stream.Append(ids[3]));
        Assert.Equal("", stream.Append(ids[4]));
        Assert.Equal("\U0001F999", stream.Append(ids[5]));
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void AnIncompleteCharacterAtTheEndComesOutOfFlushAsDecodeHasIt()
    {
        var tok = TokenizerFixtures.Load(TextTokenizer.BpeKind);
        int[] ids = [.. tok.Encode("ok ", addSpecial: false), 0xF0, 0x9F]; // 2 of the 4 bytes of an emoji
        var stream = tok.CreateStreamingDetokenizer();

        Assert.Equal("ok ", stream.Append(ids));
        Assert.Equal(tok.Decode(ids)[3..], stream.Flush());
        Assert.Equal("again", stream.Append(tok.Encode("again"))); // Flush started a new sequence
    }

    [Theory]
    [MemberData(nameof(KindsAndSkip))]
    public void ArbitraryIdSequencesStillReproduceDecode(string kind, bool skipSpecial)
    {
        // Not text a model should produce (lone bytes, specials anywhere), but the contract still holds.
        var tok = TokenizerFixtures.Load(kind);
        for (int seed = 0; seed < 10; seed++)
        {
            var random = new Random(100 + seed);
            int[] ids = Enumerable.Range(0, 300).Select(_ => random.Next(0, tok.VocabularySize)).ToArray();
            var stream = tok.CreateStreamingDetokenizer(skipSpecial);
            var output = new StringBuilder();
            for (int i = 0; i < ids.Length;)
            {
                int n = Math.Min(random.Next(1, 4), ids.Length - i);
                output.Append(stream.Append(ids.AsSpan(i, n)));
                i += n;
            }

            output.Append(stream.Flush());
            Assert.Equal(tok.Decode(ids, skipSpecial), output.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndSkip))]
    public void TheWindowStaysSmallOverALongStream(string kind, bool skipSpecial)
    {
        var tok = TokenizerFixtures.Load(kind);
        int[] ids = tok.Encode(string.Concat(Enumerable.Repeat(string.Concat(TokenizerFixtures.Texts), 5)));
        var stream = tok.CreateStreamingDetokenizer(skipSpecial);
        int largest = 0;
        foreach (int id in ids)
        {
            stream.Append(id);
            largest = Math.Max(largest, stream.WindowLength);
        }

        // At most the bytes of one character are pending (4), plus the first pieces of the sequence.
        Assert.InRange(largest, 1, 5);
        Assert.True(ids.Length > 500);
    }
}
