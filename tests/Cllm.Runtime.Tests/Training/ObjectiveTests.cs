using Cllm.Model;
using Cllm.Native;
using Cllm.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Training;

/// <summary>
/// The CLLM objective's terms pinned on a tiny model and hand-built trajectories: each value is recomputed here
/// from the model's raw logits by plain loops in doubles (log-softmax, KL, cross-entropy with label smoothing,
/// the mask after the first wrong token), never by the library's loss functions.
/// </summary>
public sealed class ObjectiveTests
{
    const int Vocab = 16;
    const double Tolerance = 2e-5;

    static Transformer Model()
    {
        TorchNative.EnsureLoaded();
        var model = new Transformer(ModelConfig.Preset("tiny") with { VocabSize = Vocab });
        model.InitializeRandom(21, 0.3);
        model.eval();
        return model;
    }

    // Prompt [1, 5, 7], block of 4. The state's first wrong token is at 1 (9 for 4): positions 2 and 3 count.
    static readonly int[] Prompt = [1, 5, 7];
    static readonly int[] FixedPoint = [3, 4, 5, 6];
    static readonly int[] State = [3, 9, 5, 6];
    // The local target: the next state on the trajectory, right up to 2 (first difference from State at 1).
    static readonly int[] NextState = [3, 4, 11, 6];

    /// <summary>The model's logits for prompt + block at the block's n positions: row i predicts block token i.</summary>
    static double[][] BlockLogits(Transformer model, int[] prompt, int[] block)
    {
        using var _ = no_grad();
        long[] ids = [.. prompt.Concat(block).Select(t => (long)t)];
        using var logits = model.ForwardTraining(tensor(ids, [1, ids.Length])).to(float64);
        var flat = logits.data<double>().ToArray();
        return [.. Enumerable.Range(0, block.Length).Select(i => flat.AsSpan((prompt.Length - 1 + i) * Vocab, Vocab).ToArray())];
    }

    static double[] LogSoftmax(double[] z)
    {
        var max = z.Max();
        var log = Math.Log(z.Sum(x => Math.Exp(x - max))) + max;
        return [.. z.Select(x => x - log)];
    }

    /// <summary>KL(target || student) = sum_v p_t(v) (log p_t(v) - log p_s(v)).</summary>
    static double Kl(double[] target, double[] student)
    {
        var (lt, ls) = (LogSoftmax(target), LogSoftmax(student));
        double kl = 0;
        for (var v = 0; v < lt.Length; v++) kl += Math.Exp(lt[v]) * (lt[v] - ls[v]);
        return kl;
    }

    /// <summary>Cross-entropy against (1 - eps) one-hot + eps / V: -(1 - eps) log p(label) - eps/V sum_v log p(v).</summary>
    static double SmoothedCrossEntropy(double[] logits, int label, double eps)
    {
        var log = LogSoftmax(logits);
        return -(1 - eps) * log[label] - eps / log.Length * log.Sum();
    }

    /// <summary>The consistency term: the mean KL over the positions after the first token where state and goal differ.</summary>
    static (double Value, int Positions) ExpectedConsistency(double[][] goal, double[][] student, int[] state, int[] goalTokens)
    {
        var firstWrong = Enumerable.Range(0, state.Length).FirstOrDefault(i => state[i] != goalTokens[i], state.Length);
        double sum = 0;
        var positions = 0;
        for (var i = firstWrong + 1; i < state.Length; i++)
        {
            sum += Kl(goal[i], student[i]);
            positions++;
        }
        return (positions == 0 ? 0 : sum / positions, positions);
    }

    static double ExpectedAr(double[][] fixedPointLogits, double eps) =>
        Enumerable.Range(0, FixedPoint.Length).Average(i => SmoothedCrossEntropy(fixedPointLogits[i], FixedPoint[i], eps));

    static Trajectory Hand(int[] prompt, params int[][] states) => new(0, 0, prompt, states, FixedPoint);

    static void Near(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerance * Math.Max(1, Math.Abs(expected)),
            $"{what}: expected {expected:R} (computed by hand), got {actual:R}");

    [Theory]
    [InlineData(0.5, 0.1)]
    [InlineData(2.0, 0.0)]
    [InlineData(0.25, 0.3)]
    public void GlobalConsistencyAndArTermMatchHandComputedValues(double arWeight, double smoothing)
    {
        using var model = Model();
        var goal = BlockLogits(model, Prompt, FixedPoint);
        var student = BlockLogits(model, Prompt, State);
        var (consistency, positions) = ExpectedConsistency(goal, student, State, FixedPoint);
        var ar = ExpectedAr(goal, smoothing);
        Assert.Equal(2, positions);
        Assert.True(consistency > 1e-4, "the hand-built state must disagree with its fixed point's logits");
        // Positions 0 and 1 see the same context in both passes: their KL is zero, so a mask that counted them
        // would only change the mean's denominator.
        Assert.True(Kl(goal[0], student[0]) < 1e-9 && Kl(goal[1], student[1]) < 1e-9);

        var objective = Objectives.Consistency(model, [Hand(Prompt, State, FixedPoint)], ConsistencyKind.Global, arWeight,
            seed: 3, labelSmoothing: smoothing);
        for (var step = 0; step < 3; step++)
        {
            var result = objective(step, 0);
            Near(consistency, result.Parts!["consistency"], "consistency term");
            Near(ar, result.Parts["ar"], "AR term");
            Near(consistency + arWeight * ar, result.Loss.item<float>(), "loss = consistency + arWeight x AR");
            Assert.Equal(2L * (Prompt.Length + FixedPoint.Length), result.Tokens);
        }
    }

    [Fact]
    public void LocalConsistencyTargetsTheNextStateAndTheArTermStaysOnTheFixedPoint()
    {
        using var model = Model();
        var next = BlockLogits(model, Prompt, NextState);
        var student = BlockLogits(model, Prompt, State);
        var fixedPoint = BlockLogits(model, Prompt, FixedPoint);
        var (consistency, positions) = ExpectedConsistency(next, student, State, NextState);
        Assert.Equal(2, positions);
        // The global target differs: a local objective that used the fixed point would be caught.
        var (global, _) = ExpectedConsistency(fixedPoint, student, State, FixedPoint);
        Assert.True(Math.Abs(global - consistency) > 1e-3);

        var objective = Objectives.Consistency(model, [Hand(Prompt, State, NextState)], ConsistencyKind.Local, arWeight: 0.7,
            seed: 5, labelSmoothing: 0.1);
        var result = objective(0, 0);
        Near(consistency, result.Parts!["consistency"], "local consistency term");
        Near(ExpectedAr(fixedPoint, 0.1), result.Parts["ar"], "AR term on the fixed point");
        Near(consistency + 0.7 * ExpectedAr(fixedPoint, 0.1), result.Loss.item<float>(), "local loss");
    }

    [Theory]
    [InlineData(0)] // first token wrong: positions 1..3
    [InlineData(2)] // positions 3 only
    [InlineData(3)] // last token wrong: nothing sees a wrong token
    public void OnlyPositionsAfterTheFirstWrongTokenCount(int wrongAt)
    {
        using var model = Model();
        var state = (int[])FixedPoint.Clone();
        state[wrongAt] = 13;
        var goal = BlockLogits(model, Prompt, FixedPoint);
        var student = BlockLogits(model, Prompt, state);
        var (consistency, positions) = ExpectedConsistency(goal, student, state, FixedPoint);
        Assert.Equal(FixedPoint.Length - 1 - wrongAt, positions);

        var result = Objectives.Consistency(model, [Hand(Prompt, state, FixedPoint)], ConsistencyKind.Global, arWeight: 0,
            seed: 1, labelSmoothing: 0)(0, 0);
        Near(consistency, result.Parts!["consistency"], $"consistency with the first wrong token at {wrongAt}");
        Assert.False(result.Parts.ContainsKey("ar"), "arWeight 0 must leave the AR term out");
        Near(consistency, result.Loss.item<float>(), "loss without the AR term");
        if (positions == 0) Assert.Equal(0, result.Loss.item<float>());
    }

    [Fact]
    public void AtTheFixedPointTheConsistencyTermIsExactlyZeroAndOnlyTheArTermRemains()
    {
        using var model = Model();
        var result = Objectives.Consistency(model, [Hand(Prompt, FixedPoint, FixedPoint)], ConsistencyKind.Global, arWeight: 1.5,
            seed: 2, labelSmoothing: 0.1)(0, 0);
        Assert.Equal(0, result.Parts!["consistency"]);
        var ar = ExpectedAr(BlockLogits(model, Prompt, FixedPoint), 0.1);
        Near(1.5 * ar, result.Loss.item<float>(), "loss at the fixed point");
    }

    [Fact]
    public void ABatchOfTrajectoriesWithDifferentPromptsAveragesOverAllCountedPositions()
    {
        using var model = Model();
        // Two prompt lengths, so the batch is padded and each row's block starts at its own offset.
        int[] longPrompt = [1, 8, 2, 6, 10, 12];
        var a = Hand(Prompt, State, FixedPoint);                      // 2 positions count
        var b = Hand(longPrompt, [3, 4, 5, 15], FixedPoint);           // 0 positions count (last token wrong)
        var c = Hand(longPrompt, [14, 4, 5, 6], FixedPoint);           // 3 positions count
        Trajectory[] all = [a, b, c];
        (double Sum, int Count, double Ar) Terms(Trajectory t)
        {
            var goal = BlockLogits(model, t.Prompt, t.FixedPoint);
            var (mean, count) = ExpectedConsistency(goal, BlockLogits(model, t.Prompt, t.States[0]), t.States[0], t.FixedPoint);
            return (mean * count, count, Enumerable.Range(0, 4).Sum(i => SmoothedCrossEntropy(goal[i], t.FixedPoint[i], 0.1)));
        }
        var terms = all.Select(Terms).ToArray();

        var objective = Objectives.Consistency(model, all, ConsistencyKind.Global, arWeight: 0.5, seed: 9, batchSize: 2,
            labelSmoothing: 0.1);
        var mixed = 0;
        for (var micro = 0; micro < 6; micro++)
        {
            var result = objective(0, micro);
            // The draw is the objective's own: the value must be that of one of the 9 ordered pairs.
            var matches = (from i in Enumerable.Range(0, 3)
                           from j in Enumerable.Range(0, 3)
                           let count = terms[i].Count + terms[j].Count
                           let consistency = count == 0 ? 0 : (terms[i].Sum + terms[j].Sum) / count
                           let ar = (terms[i].Ar + terms[j].Ar) / 8
                           where Math.Abs(consistency - result.Parts!["consistency"]) <= Tolerance * Math.Max(1, consistency)
                                 && Math.Abs(ar - result.Parts["ar"]) <= Tolerance * Math.Max(1, ar)
                                 && Math.Abs(consistency + 0.5 * ar - result.Loss.item<float>()) <= Tolerance * 2
                           select (i, j)).ToList();
            Assert.True(matches.Count > 0,
                $"micro-batch {micro}: consistency {result.Parts!["consistency"]}, AR {result.Parts["ar"]} " +
                                          "match no pair of hand-built trajectories");
            if (matches.Any(m => all[m.i].Prompt.Length != all[m.j].Prompt.Length)) mixed++;
        }
        Assert.True(mixed > 0, "no micro-batch mixed the two prompt lengths");
    }

    [Fact]
    public void ConsistencyLossIsTheMaskedMeanKlAndItsGradientIsStudentMinusTarget()
    {
        TorchNative.EnsureLoaded();
        var random = new Random(4);
        double[] Draw(int n) => [.. Enumerable.Range(0, n).Select(_ => random.NextDouble() * 6 - 3)];
        var (b, t) = (2, 3);
        var studentValues = Draw(b * t * Vocab);
        var targetValues = Draw(b * t * Vocab);
        bool[] mask = [false, true, true, true, false, true];
        var student = tensor(studentValues, [b, t, Vocab], float32).requires_grad_();
        var target = tensor(targetValues, [b, t, Vocab], float32).requires_grad_();
        var loss = Losses.Consistency(student, target, tensor(mask, [b, t]));
        loss.backward();

        double[] Row(double[] values, int r) => values.AsSpan(r * Vocab, Vocab).ToArray();
        var counted = Enumerable.Range(0, b * t).Where(r => mask[r]).ToArray();
        Near(counted.Average(r => Kl(Row(targetValues, r), Row(studentValues, r))), loss.item<float>(), "masked mean KL");

        // d KL(p || softmax(z)) / dz = softmax(z) - p, over the counted positions' mean.
        var grad = student.grad!.to(float64).data<double>().ToArray();
        for (var r = 0; r < b * t; r++)
        {
            var (ps, pt) = (LogSoftmax(Row(studentValues, r)), LogSoftmax(Row(targetValues, r)));
            for (var v = 0; v < Vocab; v++)
            {
                var expected = mask[r] ? (Math.Exp(ps[v]) - Math.Exp(pt[v])) / counted.Length : 0;
                Assert.True(Math.Abs(expected - grad[r * Vocab + v]) < 1e-6,
                    $"gradient at row {r}, token {v}: {grad[r * Vocab + v]} vs {expected}");
            }
        }
        Assert.True(target.grad is null || target.grad.abs().max().item<float>() == 0, "a gradient reached the target");
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void ArLossIsSmoothedCrossEntropyThatSkipsIgnoredLabels(double smoothing)
    {
        TorchNative.EnsureLoaded();
        var random = new Random(8);
        var values = Enumerable.Range(0, 2 * 3 * Vocab).Select(_ => random.NextDouble() * 8 - 4).ToArray();
        long[] labels = [4, Losses.Ignore, 0, 15, 7, Losses.Ignore];
        var loss = Losses.Autoregressive(tensor(values, [2, 3, Vocab], float32), tensor(labels, [2, 3]), smoothing).item<float>();
        var expected = Enumerable.Range(0, 6).Where(r => labels[r] != Losses.Ignore)
            .Average(r => SmoothedCrossEntropy(values.AsSpan(r * Vocab, Vocab).ToArray(), (int)labels[r], smoothing));
        Near(expected, loss, $"AR loss with smoothing {smoothing}");
    }

    [Fact]
    public void PreTrainingBatchesIgnoreTheirPadding()
    {
        using var model = Model();
        int[][] sequences = [[1, 4, 9, 3, 12, 7, 2], [1, 6, 11]];
        (double Sum, int Count) Terms(int[] s)
        {
            var logits = BlockLogits(model, s[..1], s[1..]);
            return (Enumerable.Range(0, s.Length - 1).Sum(i => SmoothedCrossEntropy(logits[i], s[i + 1], 0)), s.Length - 1);
        }
        var terms = sequences.Select(Terms).ToArray();
        var objective = Objectives.Autoregressive(model, sequences, batchSize: 2, seed: 6);
        var mixed = 0;
        for (var micro = 0; micro < 10; micro++)
        {
            var result = objective(0, micro);
            var pairs = (from i in Enumerable.Range(0, 2)
                         from j in Enumerable.Range(0, 2)
                         let count = terms[i].Count + terms[j].Count
                         where count == result.Tokens
                               && Math.Abs((terms[i].Sum + terms[j].Sum) / count - result.Loss.item<float>()) <= Tolerance * 4
                         select (i, j)).ToList();
            Assert.True(pairs.Count > 0,
                $"micro-batch {micro}: loss {result.Loss.item<float>()} over {result.Tokens} tokens matches no pair");
            if (pairs.Any(p => p.i != p.j)) mixed++;
        }
        Assert.True(mixed > 0, "no micro-batch mixed the two lengths");
    }
}
