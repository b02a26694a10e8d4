using System.Diagnostics;
using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Cli.Bench;

/// <summary>
/// <c>cllm bench --pass-cost</c>: the median time of a forward pass over n new tokens against one over 1 new token
/// after a context already cached; with <c>--profile</c> also each pass's time split by operation.
/// </summary>
static class PassCost
{
    public static PassCostResult Measure(CllmEngine engine, int context, int block, int repetitions, bool profile = false)
    {
        var model = engine.Model;
        if (context + block > engine.ContextLength)
            throw new ArgumentException($"--context {context} + --block {block} exceeds the engine's context ({engine.ContextLength}).");
        using var cache = new KvCache(model.Config, context + block, model.DType, model.Device);
        var random = new Random(1);
        var prefix = Enumerable.Range(0, context).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        var tokens = Enumerable.Range(0, block).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        using (var _ = inference_mode())
        using (var scope = NewDisposeScope())
            model.Forward(tensor(prefix).unsqueeze(0), 0, cache, lastPositionOnly: true);

        double Time(int count)
        {
            using var _ = inference_mode();
            using var scope = NewDisposeScope();
            var input = tensor(tokens.Take(count).ToArray()).unsqueeze(0);
            var clock = Stopwatch.StartNew();
            var logits = model.Forward(input, context, cache);
            logits.argmax(-1).data<long>().ToArray(); // what a decoder reads back
            clock.Stop();
            cache.Truncate(context);
            return clock.Elapsed.TotalMilliseconds;
        }

        for (var i = 0; i < 5; i++) { Time(1); Time(block); }
        var one = new List<double>();
        var many = new List<double>();
        for (var i = 0; i < repetitions; i++) // interleaved, so noise hits both alike
        {
            one.Add(Time(1));
            many.Add(Time(block));
        }
        var result = new PassCostResult
        {
            Model = engine.ModelDirectory,
            ParametersMillions = Math.Round(model.Config.ParameterCount / 1e6, 1),
            DType = engine.Options.DType.ToString().ToLowerInvariant(),
            Threads = get_num_threads(),
            Context = context,
            Repetitions = repetitions,
            Block = block,
            MsOneToken = Math.Round(Report.Median(one), 3),
            MsBlockTokens = Math.Round(Report.Median(many), 3),
            BestMsOneToken = Math.Round(one.Min(), 3),
            BestMsBlockTokens = Math.Round(many.Min(), 3),
            CostRatio = Math.Round(Report.Median(many) / Report.Median(one), 3),
            ArTokensPerSecondBound = Math.Round(1000 / Report.Median(one), 1),
            PeakRssMiB = Report.PeakRssMiB(),
            Profiles = [],
        };
        if (!profile) return result;
        return result with { Profiles = [Split(model.Config, 1, repetitions, Time), Split(model.Config, block, repetitions, Time)] };
    }

    // The mean time per pass in each operation of the Kernels seam (the rest is "other": embedding, cache writes,
    // masks, residual adds, the logits' copy and argmax), and the linear products' rate against the multiply-adds they do.
    static PassSplit Split(ModelConfig config, int count, int repetitions, Func<int, double> time)
    {
        PassProfile.Reset();
        PassProfile.Enabled = true;
        double total = 0;
        try
        {
            for (var i = 0; i < repetitions; i++) total += time(count);
        }
        finally
        {
            PassProfile.Enabled = false;
        }
        var ms = PassProfile.Milliseconds().Select(m => m / repetitions).ToArray();
        var operations = ms.Select((m, i) => new KeyValuePair<string, double>(PassProfile.Names[i], Math.Round(m, 3))).ToArray();
        long d = config.HiddenSize, perToken = config.NumLayers * (d * config.QkvSize + config.NumHeads * config.HeadDim * d
            + 3 * d * config.IntermediateSize) + d * config.VocabSize;
        return new PassSplit(count, operations, OtherMs: Math.Round(total / repetitions - ms.Sum(), 3),
            LinearGmacsPerSecond: Math.Round(count * perToken / (ms[PassProfile.Linear] / 1000) / 1e9, 1));
    }
}
