using System.Diagnostics;

namespace Cllm.Decoding;

/// <summary>What one request cost. Filled in while the generation is enumerated.</summary>
public sealed class DecodingStats
{
    readonly List<int> _acceptedPerPass = [];

    public int PromptTokens { get; internal set; }
    public int GeneratedTokens { get; internal set; }
    /// <summary>All forward passes, the prompt's prefill included (it yields the first token).</summary>
    public int ForwardPasses { get; internal set; }
    /// <summary>Tokens a pass made final beyond the one it is guaranteed to (Jacobi): correct guesses accepted.</summary>
    public int FastForwardedTokens { get; internal set; }
    /// <summary>Accepted tokens that had already been predicted, unchanged, by two or more earlier passes while
    /// a token before them was still wrong.</summary>
    public int StationaryTokens { get; internal set; }
    /// <summary>Accepted tokens that came from a pooled n-gram (lookahead) rather than the Jacobi guesses: the
    /// passes where an n-gram branch went further than the Jacobi block.</summary>
    public int PooledTokens { get; internal set; }
    public FinishReason FinishReason { get; internal set; }
    public TimeSpan PrefillTime { get; internal set; }
    public TimeSpan DecodeTime { get; internal set; }

    /// <summary>Tokens made final by each forward pass, in order.</summary>
    public IReadOnlyList<int> AcceptedPerPass => _acceptedPerPass;

    public double TokensPerPass => ForwardPasses == 0 ? 0 : (double)GeneratedTokens / ForwardPasses;

    /// <summary>Decode tokens per second (after the first token).</summary>
    public double DecodeTokensPerSecond =>
        DecodeTime <= TimeSpan.Zero ? 0 : (GeneratedTokens - 1) / DecodeTime.TotalSeconds;

    /// <summary>histogram[k] = passes that made k tokens final.</summary>
    public int[] AcceptedHistogram() => Histogram(_acceptedPerPass);

    /// <summary>histogram[k] = how many of <paramref name="acceptedPerPass"/> equal k.</summary>
    public static int[] Histogram(IEnumerable<int> acceptedPerPass)
    {
        var all = acceptedPerPass.ToArray();
        var histogram = new int[(all.Length == 0 ? 0 : all.Max()) + 1];
        foreach (var k in all) histogram[k]++;
        return histogram;
    }

    internal void RecordPass(int accepted)
    {
        ForwardPasses++;
        GeneratedTokens += accepted;
        _acceptedPerPass.Add(accepted);
    }

    internal Stopwatch Clock { get; } = new();
}
