using Cllm.Decoding;
using Xunit;

namespace Cllm.Tests.Decoding;

/// <summary>
/// Prompt-lookup guesses copy what followed the latest earlier occurrence of the context's last two tokens, else of
/// its last token. The lossless tests only see them through speed; these pin the guesses themselves.
/// </summary>
public sealed class PromptLookupTests
{
    static int[] Guesses(int[] context, int count, params int[] already)
    {
        var guesses = new List<int>(already);
        JacobiDecoder.LookupGuesses([.. context], count, guesses);
        return [.. guesses];
    }

    [Fact]
    public void TheLastTwoTokensWinOverALaterMatchOfTheLastOne()
    {
        // (1, 2) occurred at 0-1 and was followed by 3, 9, 2; a lone 2 occurs later, at 4, followed by 4, 1, 2.
        int[] context = [1, 2, 3, 9, 2, 4, 1, 2];
        Assert.Equal([3, 9, 2], Guesses(context, 3));
    }

    [Fact]
    public void TheLatestEarlierOccurrenceIsCopied()
    {
        int[] context = [5, 6, 1, 1, 5, 6, 7, 8, 5, 6];
        Assert.Equal([7, 8, 5, 6], Guesses(context, 4));
    }

    [Fact]
    public void WithoutATwoTokenMatchTheLastTokenAloneIsLookedUp()
    {
        int[] context = [7, 3, 8, 5, 4, 3];
        Assert.Equal([8, 5, 4], Guesses(context, 3));
    }

    [Fact]
    public void CopyingStopsAtTheEndOfTheContextAndAtTheBlockSize()
    {
        int[] context = [4, 9, 4];
        Assert.Equal([9, 4], Guesses(context, 5)); // only two tokens follow the earlier 4
        Assert.Equal([9], Guesses(context, 1));
        Assert.Equal([1, 2, 9], Guesses(context, 3, 1, 2)); // guesses already made count toward the block
    }

    [Fact]
    public void NoEarlierOccurrenceGivesNoGuesses()
    {
        Assert.Empty(Guesses([1, 2, 3, 4], 4));
        Assert.Empty(Guesses([8], 4));
    }
}
