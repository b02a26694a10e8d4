using System.Diagnostics;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm generate --timings</c>: notes when each loading step of <see cref="CllmEngine.Load(string, EngineOptions?)"/>
/// ended, and the first token, from the process's start, so the time to the first token can be split.
/// </summary>
sealed class LoadPhases
{
    readonly DateTime _processStart = Process.GetCurrentProcess().StartTime.ToUniversalTime();
    readonly List<(string Phase, double Ms)> _marks = [];

    public LoadPhases() => Mark("runtime start and argument parsing");

    public void Mark(string phase) => _marks.Add((phase, (DateTime.UtcNow - _processStart).TotalMilliseconds));

    public CllmEngine Load(string modelDirectory, EngineOptions options) => CllmEngine.Load(modelDirectory, options, Mark);

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
