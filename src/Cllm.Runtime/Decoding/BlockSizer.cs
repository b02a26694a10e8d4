using System.Diagnostics;

namespace Cllm.Decoding;

/// <summary>
/// Chooses the Jacobi block size n (lookahead's window) that makes the most tokens per second on this machine
/// with this model. A block's guesses are refined pass after pass until they are used up, so what a size is worth
/// shows over whole blocks: for each candidate size the sizer keeps the tokens its blocks made and the seconds
/// their passes took (decayed, so it follows a change of domain), tries every size a few times, then takes the
/// best, still trying the others now and then. The cost of a pass of n rows is measured once per engine; a size
/// whose pass costs more than n one-token passes cannot beat autoregressive decoding and is never tried.
/// The tokens never depend on n (greedy or seeded sampling give autoregressive decoding's tokens at any n).
/// One sizer belongs to an engine and is shared by its requests (one at a time).
/// </summary>
public sealed class BlockSizer
{
    /// <summary>Row counts the pass cost is measured at.</summary>
    static readonly int[] CalibratedRows = [1, 2, 4, 8, 16, 32];

    /// <summary>The block sizes chosen among.</summary>
    // Up to 32: on the CPUs measured, larger blocks never paid (a 32-row pass already costs 2-3x a 1-row one in f32),
    // and every size tried costs exploration blocks at the start of an engine's life.
    static readonly int[] Candidates = [4, 8, 12, 16, 24, 32];

    /// <summary>The largest block chosen.</summary>
    public const int MaxBlockSize = 32;

    const int TriesPerSize = 2;   // blocks each size gets before the sizer starts choosing
    const int ExploreEvery = 16;  // then one block in this many tries the size least tried lately
    const double Decay = 0.95;    // per block of that size

    readonly double[] _cost = new double[CalibratedRows.Length];
    readonly double[] _tokens = new double[Candidates.Length];
    readonly double[] _seconds = new double[Candidates.Length];
    readonly int[] _blocks = new int[Candidates.Length];
    readonly long[] _lastTried = new long[Candidates.Length];
    readonly object _lock = new();
    long _choices;

    /// <summary>Whether the pass cost has been measured.</summary>
    public bool Calibrated { get; private set; }

    /// <summary>The block size chosen last (for reports).</summary>
    public int Current { get; private set; } = 16;

    /// <summary>Measured seconds per pass of each calibrated row count (empty until calibrated).</summary>
    public IReadOnlyDictionary<int, double> PassSeconds
    {
        get
        {
            lock (_lock)
                return Calibrated ? CalibratedRows.Select((r, i) => (r, _cost[i])).ToDictionary(p => p.r, p => p.Item2) : new Dictionary<int, double>();
        }
    }

    /// <summary>Tokens per second each size has made so far (sizes not tried yet are left out).</summary>
    public IReadOnlyDictionary<int, double> TokensPerSecond
    {
        get
        {
            lock (_lock)
                return Candidates.Select((n, i) => (n, i)).Where(p => _seconds[p.i] > 0)
                    .ToDictionary(p => p.n, p => _tokens[p.i] / _seconds[p.i]);
        }
    }

    /// <summary>Times <paramref name="pass"/> (a forward pass over r rows) at every calibrated row count, best of
    /// <paramref name="repeats"/>, after one warm-up each.</summary>
    public void Calibrate(Action<int> pass, int repeats = 3)
    {
        ArgumentNullException.ThrowIfNull(pass);
        var costs = new double[CalibratedRows.Length];
        var clock = new Stopwatch();
        for (var i = 0; i < CalibratedRows.Length; i++)
        {
            pass(CalibratedRows[i]);
            var best = double.MaxValue;
            for (var r = 0; r < repeats; r++)
            {
                clock.Restart();
                pass(CalibratedRows[i]);
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            costs[i] = best;
        }
        SetCosts(costs);
    }

    /// <summary>The rows the pass cost is measured at.</summary>
    internal static IReadOnlyList<int> Rows => CalibratedRows;

    /// <summary>Sets the seconds per pass of each of <see cref="Rows"/> (what <see cref="Calibrate(Action{int}, int)"/> measures).</summary>
    internal void SetCosts(double[] costs)
    {
        if (costs.Length != CalibratedRows.Length || costs.Any(c => !(c > 0) || !double.IsFinite(c)))
            throw new ArgumentException($"Expected {CalibratedRows.Length} positive pass costs.", nameof(costs));
        costs = [.. costs];
        // A pass of more rows never costs less: keep the table monotone so noise can't make a big block look free.
        for (var i = 1; i < costs.Length; i++) costs[i] = Math.Max(costs[i], costs[i - 1]);
        lock (_lock)
        {
            Array.Copy(costs, _cost, costs.Length);
            Calibrated = true;
        }
    }

    /// <summary>Records a finished block: its size, the tokens its passes made final and the seconds they took.</summary>
    public void RecordBlock(int blockSize, int tokens, double seconds)
    {
        var i = Array.IndexOf(Candidates, blockSize);
        if (i < 0 || tokens <= 0 || !(seconds > 0)) return;
        lock (_lock)
        {
            _tokens[i] = _tokens[i] * Decay + tokens;
            _seconds[i] = _seconds[i] * Decay + seconds;
            _blocks[i]++;
        }
    }

    /// <summary>The block size for the next block, at most <paramref name="limit"/>.</summary>
    public int Choose(int limit = MaxBlockSize)
    {
        lock (_lock)
        {
            var allowed = Enumerable.Range(0, Candidates.Length).Where(i => Candidates[i] <= Math.Max(limit, Candidates[0]) && Worthwhile(i)).ToList();
            if (allowed.Count == 0) return Current = Math.Clamp(Math.Min(16, limit), 2, MaxBlockSize);
            _choices++;
            // First every size a few times, from the middle outwards (16 first: the usual good size).
            var untried = allowed.Where(i => _blocks[i] < TriesPerSize).OrderBy(i => Math.Abs(Candidates[i] - 16)).ToList();
            int pick;
            if (untried.Count > 0) pick = untried[0];
            else if (_choices % ExploreEvery == 0) pick = allowed.OrderBy(i => _lastTried[i]).First();
            else pick = allowed.OrderByDescending(i => _tokens[i] / _seconds[i]).First();
            _lastTried[pick] = _choices;
            return Current = Math.Min(Candidates[pick], Math.Max(2, limit));
        }
    }

    // A pass of n rows that costs more than n one-row passes loses to autoregressive decoding even if every guess is right.
    bool Worthwhile(int candidate) => !Calibrated || Cost(Candidates[candidate]) < Candidates[candidate] * _cost[0];

    double Cost(int rows)
    {
        if (rows <= CalibratedRows[0]) return _cost[0];
        for (var i = 1; i < CalibratedRows.Length; i++)
        {
            if (rows > CalibratedRows[i]) continue;
            var (r0, r1) = (CalibratedRows[i - 1], CalibratedRows[i]);
            return _cost[i - 1] + (_cost[i] - _cost[i - 1]) * (rows - r0) / (r1 - r0);
        }
        return _cost[^1] * rows / CalibratedRows[^1];
    }
}
