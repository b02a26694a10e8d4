using System.CommandLine;
using System.Text.Json.Nodes;

namespace Cllm.Cli.Bench;

/// <summary><c>cllm bench plot</c>: a grouped bar chart of saved --vs-llamacpp results, speed relative to llama.cpp AR.</summary>
static class BenchPlot
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "PNG file to write.", Required = true };
        var files = new Argument<string[]>("results") { Description = "JSON files written by `cllm bench --vs-llamacpp --json`.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("plot", "Chart saved --vs-llamacpp results (tokens/s as a multiple of llama.cpp AR) as a PNG.") { output, files };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var results = parse.GetValue(files)!.Select(f => JsonNode.Parse(File.ReadAllText(f))
                ?? throw new InvalidDataException($"{f}: not a JSON object.")).ToArray();
            var path = parse.GetValue(output)!;
            Plot(results, path);
            Console.WriteLine($"Wrote {path}");
            return 0;
        }));
        return command;
    }

    static void Plot(IReadOnlyList<JsonNode> results, string path)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        string[] engines = [SideBySide.LlamaCppName, SideBySide.ArName, SideBySide.JacobiName];
        var bars = new List<ScottPlot.Bar>();
        var ticks = new List<double>();
        var labels = new List<string>();
        // Two groups per result: whole requests (prefill included) and decoding after the first token.
        var groups = results.SelectMany(r => new[]
        {
            (Result: r, Measure: "per request", Ratio: "speed_ratio", Speed: "tokens_per_second"),
            (Result: r, Measure: "decode only", Ratio: "decode_speed_ratio", Speed: "decode_tokens_per_second"),
        }).ToArray();
        for (var g = 0; g < groups.Length; g++)
        {
            var (r, measure, ratioKey, speedKey) = groups[g];
            var rows = r["engines"]!.AsArray();
            for (var e = 0; e < engines.Length; e++)
            {
                var row = rows.FirstOrDefault(x => x!["engine"]!.GetValue<string>() == engines[e])
                          ?? throw new InvalidDataException($"a result has no '{engines[e]}' row.");
                var ratio = row[ratioKey]!.GetValue<double>();
                bars.Add(new ScottPlot.Bar
                {
                    Position = g * (engines.Length + 1) + e,
                    Value = ratio,
                    FillColor = palette.GetColor(e),
                    Label = $"{ratio:0.00}x\n{row[speedKey]!.GetValue<double>():0}",
                });
            }
            ticks.Add(g * (engines.Length + 1) + (engines.Length - 1) / 2.0);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(r["model"]!.GetValue<string>()));
            labels.Add($"{name} ({r["parameters_millions"]}M, {r["dtype"]}, {r["threads"]} thr.)\n{measure}");
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 13;
        var one = plot.Add.HorizontalLine(1);
        one.LinePattern = ScottPlot.LinePattern.Dashed;
        one.Color = ScottPlot.Colors.Gray;
        for (var e = 0; e < engines.Length; e++)
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = engines[e], FillColor = palette.GetColor(e) });
        plot.Legend.Alignment = ScottPlot.Alignment.UpperRight;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray(), labels.ToArray());
        plot.Axes.Margins(bottom: 0, top: 0.25);
        plot.Title("Greedy decoding speed relative to llama.cpp AR (same weights, prompts, threads; labels: ratio, tokens/s)");
        plot.YLabel("tokens/s ÷ llama.cpp AR tokens/s");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 1200, 640);
    }
}
