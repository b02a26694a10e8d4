using System.CommandLine;
using System.Text.Json;
using Cllm.Decoding;

namespace Cllm.Cli;

/// <summary><c>cllm generate</c>: one prompt, streamed to the console as each forward pass makes tokens final.</summary>
static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompt = new Option<string>("--prompt") { Description = "Prompt text (raw: no chat template).", Required = true };
        var decoder = new Option<string>("--decoder") { Description = "ar or jacobi.", DefaultValueFactory = _ => "jacobi" };
        var block = CliOptions.Block();
        var maxTokens = CliOptions.MaxTokens();
        var guess = CliOptions.Guess();
        var temperature = new Option<float>("--temperature") { Description = "0 is greedy; > 0 samples (with --decoder ar)." };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k");
        var seed = new Option<long?>("--seed");
        var dtype = CliOptions.DType();
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var command = new Command("generate", "Generate a continuation of a prompt.")
        {
            model, prompt, decoder, block, maxTokens, guess, temperature, topP, topK, seed, dtype, device, threads, json,
        };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            var decoderKind = CliOptions.ParseDecoder(parse.GetValue(decoder)!);
            if (decoderKind == DecoderKind.Jacobi && parse.GetValue(temperature) > 0)
            {
                // Like the chat client: sampling is exact autoregressively; Jacobi decoding is greedy.
                Console.Error.WriteLine("cllm: --temperature > 0 samples autoregressively (exact); Jacobi decoding is greedy.");
                decoderKind = DecoderKind.Autoregressive;
            }
            var options = new GenerationOptions
            {
                Decoder = decoderKind,
                BlockSize = parse.GetValue(block),
                MaxNewTokens = parse.GetValue(maxTokens),
                InitialGuess = CliOptions.ParseGuess(parse.GetValue(guess)!),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                TopK = parse.GetValue(topK),
                Seed = parse.GetValue(seed),
            }.Validate();
            using var engine = CllmEngine.Load(parse.GetValue(model)!, new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Device = parse.GetValue(device)!, Threads = parse.GetValue(threads),
            });
            var asJson = parse.GetValue(json);
            var ids = engine.Tokenizer.Encode(parse.GetValue(prompt)!);
            var stats = new DecodingStats();
            var detokenizer = engine.Tokenizer.CreateStreamingDetokenizer();
            var tokens = new List<int>();
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            foreach (var chunk in engine.Generate(ids, options, stats, cancel.Token))
            {
                tokens.AddRange(chunk.Tokens);
                var text = detokenizer.Append(chunk.Tokens);
                if (!asJson) Console.Write(text);
            }
            var tail = detokenizer.Flush();
            if (!asJson)
            {
                Console.WriteLine(tail);
                Console.Error.WriteLine(
                    $"[{stats.GeneratedTokens} tokens, {stats.ForwardPasses} passes, {stats.TokensPerPass:F2} tokens/pass, " +
                    $"{stats.DecodeTokensPerSecond:F1} tokens/s, finish: {stats.FinishReason}]");
                return 0;
            }
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                text = engine.Tokenizer.Decode(tokens, skipSpecial: true),
                tokens,
                finish_reason = stats.FinishReason.ToString().ToLowerInvariant(),
                stats = Report.Stats(stats),
            }, CliOptions.JsonOutput));
            return 0;
        }));
        return command;
    }
}
