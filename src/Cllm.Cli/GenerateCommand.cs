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
        var decoder = new Option<string>("--decoder") { Description = "ar, jacobi or lookahead.", DefaultValueFactory = _ => "jacobi" };
        var block = CliOptions.AdaptiveBlock();
        var maxTokens = CliOptions.MaxTokens();
        var guess = CliOptions.Guess();
        var decoding = new CliOptions.Decoding();
        var dtype = CliOptions.DType();
        var device = CliOptions.Device();
        var threads = CliOptions.Threads();
        var json = CliOptions.Json();
        var timings = new Option<bool>("--timings")
        {
            Description = "Print where the time to the first token went (process start, natives, tokenizer, weights, first token) to stderr.",
        };
        var command = new Command("generate", "Generate a continuation of a prompt.")
        {
            model, prompt, decoder, block, maxTokens, guess, dtype, device, threads, json, timings,
        };
        decoding.AddTo(command);
        command.SetAction(parse => CliOptions.Guard(() => Run(parse).GetAwaiter().GetResult()));
        return command;

        async Task<int> Run(ParseResult parse)
        {
            var options = decoding.Apply(new GenerationOptions
            {
                Decoder = CliOptions.ParseDecoder(parse.GetValue(decoder)!),
                BlockSize = parse.GetValue(block),
                MaxNewTokens = parse.GetValue(maxTokens),
                InitialGuess = CliOptions.ParseGuess(parse.GetValue(guess)!),
            }, parse).Validate();
            var engineOptions = new EngineOptions
            {
                DType = CliOptions.ParseDType(parse.GetValue(dtype)!), Device = parse.GetValue(device)!, Threads = parse.GetValue(threads),
            };
            var phases = parse.GetValue(timings) ? new LoadPhases() : null;
            using var engine = phases?.Load(parse.GetValue(model)!, engineOptions) ?? CllmEngine.Load(parse.GetValue(model)!, engineOptions);
            var asJson = parse.GetValue(json);
            var ids = engine.Tokenizer.Encode(parse.GetValue(prompt)!);
            var stats = new DecodingStats();
            var detokenizer = engine.Tokenizer.CreateStreamingDetokenizer();
            var tokens = new List<int>();
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
            try
            {
                await foreach (var chunk in engine.GenerateAsync(ids, options, stats, cancel.Token))
                {
                    if (tokens.Count == 0) phases?.Mark("first token");
                    tokens.AddRange(chunk.Tokens);
                    var text = detokenizer.Append(chunk.Tokens);
                    if (!asJson) Console.Write(text);
                }
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                // Ctrl+C: what was generated so far is still shown.
            }
            phases?.Print();
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
        }
    }
}
