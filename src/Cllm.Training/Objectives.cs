using static TorchSharp.torch;
using Transformer = Cllm.Model.Transformer;

namespace Cllm.Training;

public enum ConsistencyKind
{
    /// <summary>Any state of a trajectory towards its fixed point (the released CLLMs).</summary>
    Global,
    /// <summary>Each state towards the next one on its trajectory (in the paper, not in the public code).</summary>
    Local,
}

/// <summary>
/// The losses of one micro-batch, as functions of (step, micro-batch index) only, so that a resumed run
/// draws exactly the data an uninterrupted one would.
/// </summary>
public static class Objectives
{
    /// <summary>Next-token prediction on whole sequences (pre-training). Each micro-batch draws
    /// <paramref name="batchSize"/> sequences of similar length (one of the length-sorted groups of
    /// 8 x batch size), pads them to the longest, and ignores the padding.</summary>
    public static Func<int, int, MicroBatchLoss> Autoregressive(Transformer model, IReadOnlyList<int[]> sequences, int batchSize,
        long seed, double labelSmoothing = 0)
    {
        if (sequences.Count == 0) throw new ArgumentException("No training sequences.", nameof(sequences));
        if (sequences.Any(s => s.Length < 2)) throw new ArgumentException("Every training sequence needs at least two tokens.", nameof(sequences));
        // Padding is wasted compute: batches of similar lengths waste little.
        var groups = sequences.OrderBy(s => s.Length).Chunk(8 * batchSize).ToArray();
        return (step, micro) =>
        {
            var random = Draw(seed, step, micro);
            var group = groups[random.Next(groups.Length)];
            var batch = Enumerable.Range(0, batchSize).Select(_ => group[random.Next(group.Length)]).ToArray();
            var length = batch.Max(s => s.Length) - 1;
            var inputs = new long[batch.Length * length];
            var labels = new long[batch.Length * length];
            Array.Fill(labels, Losses.Ignore);
            long tokens = 0;
            for (var b = 0; b < batch.Length; b++)
                for (var t = 0; t < batch[b].Length - 1; t++)
                {
                    inputs[b * length + t] = batch[b][t];
                    labels[b * length + t] = batch[b][t + 1];
                    tokens++;
                }
            var logits = model.ForwardTraining(tensor(inputs, [batch.Length, length], device: model.Device));
            var loss = Losses.Autoregressive(logits, tensor(labels, [batch.Length, length], device: model.Device), labelSmoothing);
            return new MicroBatchLoss(loss, tokens);
        };
    }

    /// <summary>
    /// The CLLM objective on <paramref name="batchSize"/> trajectories: consistency (the model on prompt + a
    /// state y should predict what it predicts on prompt + y*, global, or + the next state, local; only
    /// positions after y's first wrong token count, earlier ones see the same context) plus
    /// <paramref name="arWeight"/> times the AR loss on the teacher's own output y* with label smoothing.
    /// </summary>
    public static Func<int, int, MicroBatchLoss> Consistency(Transformer model, IReadOnlyList<Trajectory> trajectories,
        ConsistencyKind kind, double arWeight, long seed, int batchSize = 1, double labelSmoothing = 0.1)
    {
        var usable = trajectories.Where(t => t.States.Length >= 2).ToArray();
        if (usable.Length == 0) throw new ArgumentException("No trajectory has an intermediate state.", nameof(trajectories));
        return (step, micro) =>
        {
            var random = Draw(seed, step, micro);
            var picks = Enumerable.Range(0, batchSize).Select(_ =>
            {
                var t = usable[random.Next(usable.Length)];
                var j = random.Next(t.States.Length - 1);
                return (Trajectory: t, State: t.States[j], Goal: kind == ConsistencyKind.Global ? t.FixedPoint : t.States[j + 1]);
            }).ToArray();
            var n = picks[0].State.Length;
            if (picks.Any(x => x.State.Length != n))
                throw new InvalidDataException("All trajectories must have the same block size.");
            var offsets = picks.Select(x => x.Trajectory.Prompt.Length - 1).ToArray();

            // Target pass on prompt + goal (with gradient: it also gives the AR loss when goal = y*), student pass on prompt + y.
            var goalLogits = BlockLogits(model, picks.Select(x => x.Trajectory.Prompt.Concat(x.Goal)), offsets, n);
            var studentLogits = BlockLogits(model, picks.Select(x => x.Trajectory.Prompt.Concat(x.State)), offsets, n);
            // Logit p-1+i predicts block token i from the inputs before it: it sees a different context from the
            // target's only if some token before i is wrong.
            var mask = new bool[batchSize * n];
            for (var b = 0; b < batchSize; b++)
            {
                var (state, goal) = (picks[b].State, picks[b].Goal);
                var firstWrong = Enumerable.Range(0, n).FirstOrDefault(i => state[i] != goal[i], n);
                for (var i = firstWrong + 1; i < n; i++) mask[b * n + i] = true;
            }
            var consistency = Losses.Consistency(studentLogits, goalLogits.detach(), tensor(mask, [batchSize, n], device: model.Device));

            var parts = new Dictionary<string, double> { ["consistency"] = consistency.item<float>() };
            var loss = consistency;
            if (arWeight > 0)
            {
                // The AR loss is always on the teacher's output y*, whatever the consistency target.
                var arLogits = kind == ConsistencyKind.Global
                    ? goalLogits
                    : BlockLogits(model, picks.Select(x => x.Trajectory.Prompt.Concat(x.Trajectory.FixedPoint)), offsets, n);
                var labels = tensor(picks.SelectMany(x => x.Trajectory.FixedPoint).Select(x => (long)x).ToArray(), [batchSize, n], device: model.Device);
                var ar = Losses.Autoregressive(arLogits, labels, labelSmoothing);
                parts["ar"] = ar.item<float>();
                loss = consistency + arWeight * ar;
            }
            return new MicroBatchLoss(loss, 2L * picks.Sum(x => x.Trajectory.Prompt.Length + n), parts);
        };
    }

    /// <summary>Runs the sequences as one right-padded batch (causal attention: padding after a sequence never
    /// changes its logits) and returns the n logits from each row's offset, [B, n, V].</summary>
    static Tensor BlockLogits(Transformer model, IEnumerable<IEnumerable<int>> sequences, int[] offsets, int n)
    {
        var rows = sequences.Select(s => s.ToArray()).ToArray();
        var length = rows.Max(r => r.Length);
        var ids = new long[rows.Length * length];
        for (var b = 0; b < rows.Length; b++)
            for (var t = 0; t < rows[b].Length; t++) ids[b * length + t] = rows[b][t];
        var logits = model.ForwardTraining(tensor(ids, [rows.Length, length], device: model.Device));
        return stack(Enumerable.Range(0, rows.Length).Select(b => logits[b].narrow(0, offsets[b], n)));
    }

    /// <summary>A generator that depends only on (seed, step, micro): no state survives between steps.</summary>
    static Random Draw(long seed, int step, int micro) =>
        new(unchecked((int)(((seed * 1_000_003L + step) * 7_919L + micro) % int.MaxValue)));
}
