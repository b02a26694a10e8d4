using Cllm.Decoding;
using Xunit;

namespace Cllm.Tests.Decoding;

public sealed class NgramPoolTests
{
    [Fact]
    public void KeepsTheMostRecentlyUsedNgramsPerFirstToken()
    {
        var pool = new NgramPool(3, 2);
        pool.AddAll([1, 2, 3, 1, 4, 5, 1, 6, 7]);
        // Key 1 saw [1,2,3], [1,4,5], [1,6,7]: the oldest is evicted.
        Assert.Equal([[1, 6, 7], [1, 4, 5]], pool.Get(1));
        pool.Add([1, 4, 5]); // used again: back to the front, nothing evicted
        Assert.Equal([[1, 4, 5], [1, 6, 7]], pool.Get(1));
        Assert.Equal([[2, 3, 1]], pool.Get(2));
        Assert.Empty(pool.Get(9));

        // AddAll from an offset adds only the n-grams starting there (the new tokens of a pass).
        pool.AddAll([9, 9, 8, 7], from: 1);
        Assert.Equal([[9, 8, 7]], pool.Get(9));

        // Jacobi-state n-grams only take free room, behind the text ones, and are evicted first.
        pool.AddWhereRoom([9, 1, 1, 1, 2, 2]);
        Assert.Equal([[9, 8, 7], [9, 1, 1]], pool.Get(9));
        Assert.Equal([[1, 4, 5], [1, 6, 7]], pool.Get(1));
        pool.Add([9, 0, 0]);
        Assert.Equal([[9, 0, 0], [9, 8, 7]], pool.Get(9));
        Assert.Equal(8, pool.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new NgramPool(1, 4));
    }
}
