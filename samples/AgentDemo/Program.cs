// The AgentDemo: a local CLLM answers store questions with tools, first through Semantic Kernel (automatic
// function calling over kernel plugins), then as a Microsoft Agent Framework agent over the same chat client.
// Answers stream as each forward pass makes tokens final. At the end the agent answers the same questions
// again with autoregressive and lookahead decoding, and a table compares the decoders.
//
//   dotnet run --project samples/AgentDemo                 the scripted run on models/cllm-tiny
//   dotnet run --project samples/AgentDemo -- --chat       an interactive session with the agent
//   dotnet run --project samples/AgentDemo -- --model DIR  another model folder
//   dotnet run --project samples/AgentDemo -- --bf16       bfloat16 weights: multi-token passes cost little more
//                                                          than one-token passes on CPUs with AMX (f32 is exact)
using Cllm;
using Cllm.Decoding;
using Cllm.Extensions.AI;
using Cllm.Samples.AgentDemo;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.ChatCompletion;

string? modelDir = ArgValue(args, "--model") ?? FindDefaultModel();
if (modelDir is null)
{
    Console.Error.WriteLine("No model found: expected models/cllm-tiny (or models/cllm-tiny-base) in the repository.");
    Console.Error.WriteLine("Make it with scripts/make-default-model.sh, or pass --model <folder of a Hugging Face model>.");
    return 2;
}

// Questions of the kinds the model was trained on, with values from the store, each with its trained answer.
var demo = DemoQuestions.FromTestSplit();
string[] questions = [.. demo.Select(q => q.Text)];
var correct = new Dictionary<string, int>();
string Check(string run, int i, string answer)
{
    bool right = demo[i].IsAnsweredBy(answer);
    correct[run] = correct.GetValueOrDefault(run) + (right ? 1 : 0);
    return right ? "   [right]" : $"   [wrong: expected \"{demo[i].Answer}\"]";
}

using var tools = new StoreTools();
var dtype = args.Contains("--bf16") ? ModelDType.BFloat16 : ModelDType.Float32;
using var engine = CllmEngine.Load(modelDir, new EngineOptions { DType = dtype });
Console.WriteLine($"Model: {modelDir} ({engine.Config.ParameterCount / 1e6:F1}M parameters, {dtype}, context {engine.ContextLength})");
Console.WriteLine("Store database: SQLite, built from StoreDatabase and opened read-only.\n");

// Semantic Kernel: the chat client with kernel function invocation, and the store tools as a plugin.
var builder = Kernel.CreateBuilder();
builder.AddCllmChatClient(engine);
builder.Plugins.AddFromObject(tools, "store");
var kernel = builder.Build();

// The agent runs over the kernel's Cllm client itself; the tally in between counts tokens and passes.
var client = kernel.GetRequiredService<IChatClient>().GetService<CllmChatClient>()!;
var tally = new DecoderTally(client, defaultDecoder: "jacobi");
var agent = new ChatClientAgent(tally, instructions: null, name: "store-agent", tools: tools.AsAITools());

if (args.Contains("--chat")) return await Chat(agent, tools);

tools.OnCall = (tool, arguments, result) => Console.Write($"\n    [{tool}({arguments}) -> {result}]\n    ");
Console.WriteLine("== Semantic Kernel, FunctionChoiceBehavior.Auto() ==");
var chat = kernel.GetRequiredService<IChatCompletionService>();
var settings = new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() };
for (int i = 0; i < questions.Length; i++)
{
    Console.Write($"Q: {questions[i]}\nA: ");
    var answer = "";
    await foreach (var chunk in chat.GetStreamingChatMessageContentsAsync(new ChatHistory([new(AuthorRole.User, questions[i])]), settings, kernel))
    {
        Console.Write(chunk.Content);
        answer += chunk.Content;
    }
    Console.WriteLine(Check("Semantic Kernel (jacobi)", i, answer) + "\n");
}

Console.WriteLine("== Agent Framework, ChatClientAgent (Jacobi decoding) ==");
var jacobiAnswers = new List<string>();
for (int i = 0; i < questions.Length; i++)
{
    Console.Write($"Q: {questions[i]}\nA: ");
    var answer = "";
    await foreach (var update in agent.RunStreamingAsync(questions[i]))
    {
        Console.Write(update.Text);
        answer += update.Text;
    }

    jacobiAnswers.Add(answer);
    Console.WriteLine(Check("agent, jacobi", i, answer) + "\n");
}

// The same questions, autoregressively (one token per forward pass) and with lookahead (Jacobi plus an n-gram
// pool): both lossless, so the answers must be Jacobi's.
tools.OnCall = null;
foreach (var decoder in new[] { "ar", "lookahead" })
{
    Console.WriteLine($"== The agent again, {(decoder == "ar" ? "autoregressive" : "lookahead")} decoding ==");
    // Cllm's own settings travel as the raw representation; what it leaves unset comes from ChatOptions and the defaults.
    var cllmSettings = new GenerationSettings { Decoder = DecoderKinds.Parse(decoder) };
    var run = new ChatClientAgentRunOptions(new ChatOptions { RawRepresentationFactory = _ => cllmSettings });
    for (int i = 0; i < questions.Length; i++)
    {
        var answer = (await agent.RunAsync(questions[i], options: run)).Text;
        Console.WriteLine($"Q: {questions[i]}\nA: {answer}{(answer == jacobiAnswers[i] ? "   (same as Jacobi)" : "   (differs from Jacobi)")}" +
                          Check($"agent, {decoder}", i, answer));
    }
    Console.WriteLine();
}

Console.WriteLine("Answered as trained:");
foreach (var (run, count) in correct) Console.WriteLine($"  {run,-26} {count}/{questions.Length}");

Console.WriteLine($"\nModel calls of the agent runs, {questions.Length} questions each:");
Console.WriteLine($"{"decoder",-10} {"tokens",7} {"passes",7} {"tok/pass",9} {"tok/s",8}");
foreach (var row in tally.Rows)
    Console.WriteLine($"{row.Decoder,-10} {row.Tokens,7} {row.Passes,7} {row.TokensPerPass,9:F2} {row.TokensPerSecond,8:F1}");
return 0;

static async Task<int> Chat(AIAgent agent, StoreTools tools)
{
    tools.OnCall = (tool, arguments, result) => Console.Write($"\n  [{tool}({arguments}) -> {result}]\n  ");
    var session = await agent.CreateSessionAsync();
    Console.WriteLine("Ask about the store, orders, the weather or arithmetic; an empty line ends the session.");
    while (true)
    {
        Console.Write("> ");
        var line = Console.ReadLine();
        if (string.IsNullOrWhiteSpace(line)) return 0;
        Console.Write("  ");
        await foreach (var update in agent.RunStreamingAsync(line, session))
            Console.Write(update.Text);
        Console.WriteLine();
    }
}

static string? ArgValue(string[] args, string name) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

// The CLLM if it is there, else its autoregressive base: both were trained on the same tool conversations.
static string? FindDefaultModel()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        foreach (var name in new[] { "cllm-tiny", "cllm-tiny-base" })
        {
            var candidate = Path.Combine(dir.FullName, "models", name);
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
    }

    return null;
}
