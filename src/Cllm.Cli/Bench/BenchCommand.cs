using System.CommandLine;
using System.Text.Json;

namespace Cllm.Cli.Bench;

/// <summary>
/// <c>cllm bench</c>: decoders side by side on the same prompts (<see cref="DecoderComparison"/>);
/// <c>--pass-cost</c> instead times one forward pass of n tokens against one of 1 token at a given context
/// (<see cref="PassCost"/>); <c>--vs-llamacpp</c> puts llama.cpp beside Cllm AR and Cllm Jacobi on the same weights,
/// prompts and thread count (<see cref="SideBySide"/>); <c>cllm bench plot</c> charts saved results (<see cref="BenchPlot"/>).
/// </summary>
static class BenchCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var decoders = new Option<string>("--decoders") { Description = "Comma-separated: ar, jacobi, lookahead.", DefaultValueFactory = _ => "ar,jacobi" };
        var prompts = new Option<string?>("--prompts")
        {
            Description = "File with one prompt per line, or JSONL with a \"prompt\" field (default: four built-in prompts).",
        };
        var promptCount = new Option<int?>("--prompt-count") { Description = "Use this many prompts, evenly spread over the file." };
        var vsLlamaCpp = new Option<bool>("--vs-llamacpp")
        {
            Description = "Compare with llama.cpp AR on the same weights (GGUF export), prompts and threads: tokens/s, ms per token, peak RSS.",
        };
        var probe = new Option<string?>("--probe") { Hidden = true, Description = "Internal: measure one engine's peak RSS in its own process." };
        var gguf = new Option<string?>("--gguf") { Hidden = true, Description = "Internal: the GGUF file for --probe llamacpp." };
        var maxTokens = CliOptions.MaxTokens();
        var block = CliOptions.AdaptiveBlock();
        var guess = CliOptions.Guess();
        var runs = new Option<int>("--runs") { Description = "Timed runs over all prompts (after one warm-up).", DefaultValueFactory = _ => 3 };
        var passCost = new Option<bool>("--pass-cost") { Description = "Time an n-token pass against a 1-token pass instead." };
        var profile = new Option<bool>("--profile")
        {
            Description = "With --pass-cost: also split each pass's time by operation (linear, attention, norm, rope, swiglu, other).",
        };
        var context = new Option<int>("--context") { Description = "Context length for --pass-cost.", DefaultValueFactory = _ => 256 };
        var dtype = CliOptions.DType();
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var command = new Command("bench", "Measure decoders side by side (tokens/s, tokens per pass, memory, ratio to AR).")
        {
            model, decoders, prompts, promptCount, maxTokens, block, guess, runs, passCost, profile, context, dtype, device, threads, json, vsLlamaCpp, probe, gguf,
        };
        var decoding = new CliOptions.Decoding();
        decoding.AddTo(command);
        command.Subcommands.Add(BenchPlot.Create());
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var settings = new BenchSettings
            {
                ModelDirectory = parse.GetValue(model)!, Decoders = parse.GetValue(decoders)!,
                PromptsPath = parse.GetValue(prompts), PromptCount = parse.GetValue(promptCount),
                MaxTokens = parse.GetValue(maxTokens), Block = parse.GetValue(block), Guess = parse.GetValue(guess)!,
                Runs = parse.GetValue(runs), DType = parse.GetValue(dtype)!, Device = parse.GetValue(device)!,
                Threads = parse.GetValue(threads), Context = parse.GetValue(context), Profile = parse.GetValue(profile),
                Gguf = parse.GetValue(gguf), NgramSize = parse.GetValue(decoding.NgramSize),
                NgramsPerKey = parse.GetValue(decoding.NgramsPerKey), Temperature = parse.GetValue(decoding.Temperature),
                ApplyDecoding = options => decoding.Apply(options, parse),
            };
            var asJson = parse.GetValue(json);
            if (parse.GetValue(probe) is { } engineName)
            {
                Console.WriteLine(JsonSerializer.Serialize(new SideBySide(settings).Probe(engineName), BenchJson.OneLine));
                return 0;
            }
            if (parse.GetValue(vsLlamaCpp))
            {
                if (settings.Device != "cpu") throw new ArgumentException("--vs-llamacpp compares CPU engines; leave --device at cpu.");
                var comparison = new SideBySide(settings).Run();
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(comparison, BenchJson.Indented));
                else BenchPrinter.Print(comparison);
                return 0;
            }

            using var engine = CllmEngine.Load(settings.ModelDirectory, new EngineOptions
            {
                DType = settings.ModelDType, Device = settings.Device, Threads = settings.Threads,
            });
            if (parse.GetValue(passCost))
            {
                var cost = PassCost.Measure(engine, settings.Context, settings.Block ?? 16, Math.Max(settings.Runs, 30), settings.Profile);
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(cost, BenchJson.Indented));
                else BenchPrinter.Print(cost);
                return 0;
            }
            var result = DecoderComparison.Run(engine, settings);
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(result, BenchJson.Indented));
            else BenchPrinter.Print(result);
            return 0;
        }));
        return command;
    }
}
