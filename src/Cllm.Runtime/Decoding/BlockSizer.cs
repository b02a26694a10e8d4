using System.Diagnostics;

namespace Cllm.Decoding;

/// <summary>
/// Chooses the Jacobi block size n (lookahead's window) that maximises accepted tokens per second, from what
/// this machine and this model show: the measured cost of a pass of r rows (calibrated once, then followed as
/// passes run) and the observed chance that the i-th guess of a block is accepted. The tokens never depend on
/// n (greedy or seeded sampling give autoregressive decoding's tokens at any n), only the speed does.
/// One sizer belongs to an engine and is shared by its requests (one at a time).
/// </summary>
public sealed class BlockSizer
{
    /// <summary>Row counts the pass cost is calibrated at; costs in between are interpolated linearly.</summary>
    static readonly int[] CalibratedRows = [1, 2, 4, 8, 16, 32, 64];

    /// <summary>The largest block chosen.</summary>
    public const int MaxBlockSize = 64;

    // Passes weigh in with this decay, so the estimates follow a change of domain within a few dozen passes.
    const double Decay = 0.97;
    readonly double[] _cost = new double[CalibratedRows.Length]; // seconds per pass, by CalibratedRows
    readonly double[] _tried = new double[MaxBlockSize];          // decayed count of passes that held guess i (1-based)
    readonly double[] _accepted = new double[MaxBlockSize];       // ... of which guess i was accepted
    readonly object _lock = new();

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

    /// <summary>Records a pass: how many guesses it verified and how many were accepted; and, when
    /// <paramref name="seconds"/> is given, its time for a pass of <paramref name="rows"/> rows.</summary>
    public void Record(int guesses, int accepted, int rows, double? seconds)
    {
        lock (_lock)
        {
            for (var i = 0; i < MaxBlockSize; i++)
            {
                _tried[i] *= Decay;
                _accepted[i] *= Decay;
            }
            for (var i = 0; i < Math.Min(guesses, MaxBlockSize); i++)
            {
                _tried[i] += 1;
                if (i < accepted) _accepted[i] += 1;
            }
            // Follow the machine: a pass at a calibrated size moves that size's cost a little toward what it took.
            var index = Array.IndexOf(CalibratedRows, rows);
            if (Calibrated && index >= 0 && seconds is { } s && s > 0)
            {
                _cost[index] = 0.9 * _cost[index] + 0.1 * s;
                for (var i = index + 1; i < _cost.Length; i++) _cost[i] = Math.Max(_cost[i], _cost[i - 1]);
                for (var i = index - 1; i >= 0; i--) _cost[i] = Math.Min(_cost[i], _cost[i + 1]);
            }
        }
    }

    /// <summary>The block size (2..<paramref name="limit"/>) with the most expected accepted tokens per second.</summary>
    public int Choose(int limit = MaxBlockSize)
    {
        limit = Math.Clamp(limit, 2, MaxBlockSize);
        lock (_lock)
        {
            if (!Calibrated) return Current = Math.Min(16, limit);
            // Expected tokens of a pass with n-1 guesses: 1 + sum over i < n of P(guesses 1..i all accepted).
            // Guess i's acceptance is estimated where it was tried; past that, the last estimated ratio continues
            // (optimistically: a guess never tried is given the chance of the deepest one tried, so blocks can grow).
            double expected = 1, reach = 1, lastRatio = 0.5, best = 0;
            var choice = 2;
            for (var n = 2; n <= limit; n++)
            {
                var i = n - 2; // the guess added by growing the block to n
                var ratio = _tried[i] >= 1 ? _accepted[i] / Math.Max(_tried[i], 1e-9) / Math.Max(i == 0 ? 1 : Chance(i - 1), 1e-9) : lastRatio;
                ratio = Math.Clamp(ratio, 0, 1);
                if (_tried[i] >= 1) lastRatio = ratio;
                reach *= ratio;
                expected += reach;
                var rate = expected / Cost(n);
                if (rate > best * 1.0001) (best, choice) = (rate, n);
            }
            return Current = choice;
        }
    }

    // P(guess i accepted) = P(guesses 0..i accepted), as observed.
    double Chance(int i) => _tried[i] >= 1 ? _accepted[i] / _tried[i] : 0;

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
