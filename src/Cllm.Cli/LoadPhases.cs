using System.Diagnostics;
using Cllm.Checkpoints;
using Cllm.Native;
using Cllm.Text;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm generate --timings</c>: loads an engine step by step (what <see cref="CllmEngine.Load"/> does in one call)
/// and notes when each step ended, from the process's start, so the time to the first token can be split.
/// </summary>
sealed class LoadPhases
{
    readonly DateTime _processStart = Process.GetCurrentProcess().StartTime.ToUniversalTime();
    readonly List<(string Phase, double Ms)> _marks = [];

    public LoadPhases() => Mark("runtime start and argument parsing");

    public void Mark(string phase) => _marks.Add((phase, (DateTime.UtcNow - _processStart).TotalMilliseconds));

    public CllmEngine Load(string modelDirectory, EngineOptions options)
    {
        TorchNative.EnsureLoaded();
        Mark("TorchSharp natives");
        var tokenizer = TextTokenizer.Load(modelDirectory);
        Mark("tokenizer");
        var model = ModelFiles.Load(modelDirectory, options.DType switch
        {
            ModelDType.BFloat16 => TorchSharp.torch.ScalarType.BFloat16,
            ModelDType.Float16 => TorchSharp.torch.ScalarType.Float16,
            _ => TorchSharp.torch.ScalarType.Float32,
        });
        Mark("config and weights");
        var engine = new CllmEngine(model, tokenizer, options, ownsModel: true);
        Mark("engine (KV cache)");
        return engine;
    }

    public void Print()
    {
        var previous = 0.0;
        foreach (var (phase, ms) in _marks)
        {
            Console.Error.WriteLine($"  {phase,-36} {ms - previous,8:F0} ms   (at {ms,6:F0} ms)");
            previous = ms;
        }
    }
}
