// The AgentDemo's first form: until the default CLLM (models/cllm-tiny) and the chat client land, it shows
// the engine underneath them: the same prompts decoded autoregressively and with Jacobi decoding, streamed
// as each forward pass makes tokens final, then a side-by-side table. With no trained model present it
// runs on a random-initialised model, so the text is noise but the machinery and the numbers are real.
using System.Diagnostics;
using Cllm;
using Cllm.Checkpoints;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Text;

var modelDir = FindDefaultModel() ?? MakeRandomModel();
using var engine = CllmEngine.Load(modelDir);
Console.WriteLine($"Model: {modelDir} ({engine.Config.ParameterCount / 1e6:F1}M parameters, {engine.Config.Architecture})");

string[] prompts = ["List the customers who ordered a lamp", "What is 12 plus 30?", "The weather in Paris is"];
var rows = new List<(string Decoder, int Tokens, int Passes, double Seconds)>();
foreach (var prompt in prompts)
    foreach (var decoder in new[] { DecoderKind.Jacobi, DecoderKind.Autoregressive })
    {
        Console.Write($"\n[{decoder}] {prompt} ->");
        var stats = new DecodingStats();
        var detokenizer = engine.Tokenizer.CreateStreamingDetokenizer();
        var clock = Stopwatch.StartNew();
        foreach (var chunk in engine.Generate(engine.Tokenizer.Encode(prompt), new GenerationOptions { Decoder = decoder, MaxNewTokens = 48 }, stats))
            Console.Write(detokenizer.Append(chunk.Tokens));
        Console.WriteLine(detokenizer.Flush());
        rows.Add((decoder.ToString(), stats.GeneratedTokens, stats.ForwardPasses, clock.Elapsed.TotalSeconds));
    }

Console.WriteLine($"\n{"decoder",-15} {"tokens",7} {"passes",7} {"tok/pass",9} {"tok/s",8}");
foreach (var group in rows.GroupBy(r => r.Decoder))
{
    int tokens = group.Sum(r => r.Tokens), passes = group.Sum(r => r.Passes);
    Console.WriteLine($"{group.Key,-15} {tokens,7} {passes,7} {(double)tokens / passes,9:F2} {tokens / group.Sum(r => r.Seconds),8:F1}");
}
return 0;

static string? FindDefaultModel()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "models", "cllm-tiny");
        if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
    }
    return null;
}

static string MakeRandomModel()
{
    var dir = Path.Combine(Path.GetTempPath(), "cllm-agentdemo-mini");
    if (!File.Exists(Path.Combine(dir, "config.json")))
    {
        using var model = new Transformer(ModelConfig.Preset("mini"));
        model.InitializeRandom(seed: 1, std: 0.1);
        ModelFiles.Save(model, dir);
        BuiltInTokenizers.WriteSentencePiece4k(dir);
    }
    Console.WriteLine("models/cllm-tiny is not here yet: running on a random-initialised 'mini' model (the text is noise).");
    return dir;
}
