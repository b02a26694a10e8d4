using System.Text.Json;

namespace Cllm.Cli.Bench;

/// <summary>
/// How bench results are written: snake_case keys (scripts/bench-engine.sh, the docs and <c>cllm bench plot</c> read
/// them by name), indented for <c>--json</c>, on one line for the memory probe's child-to-parent report.
/// </summary>
static class BenchJson
{
    public static readonly JsonSerializerOptions Indented = new(CliOptions.JsonOutput)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static readonly JsonSerializerOptions OneLine = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
