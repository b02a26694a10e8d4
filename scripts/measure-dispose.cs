// How long CllmChatClient.Dispose takes, and how long until a stream that was running ends, on the default
// model with Jacobi decoding (from the repository root): dotnet run scripts/measure-dispose.cs [model folder]
#:project ../src/Cllm.Extensions.AI/Cllm.Extensions.AI.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
#:property PublishAot=false
using System.Diagnostics;
using Cllm.Decoding;
using Cllm.Extensions.AI;
using Microsoft.Extensions.AI;
for (int run = 0; run < 5; run++)
{
    var client = new CllmChatClient(new CllmChatClientOptions { ModelPath = args.Length > 0 ? args[0] : "models/cllm-tiny",
        Defaults = new() { Decoder = DecoderKind.Jacobi, MaxNewTokens = 900 } });
    var stream = client.GetStreamingResponseAsync("Tell me a very long story about a dragon.").GetAsyncEnumerator();
    for (int i = 0; i < 5; i++) await stream.MoveNextAsync();
    var clock = Stopwatch.StartNew();
    client.Dispose();
    var disposeMs = clock.Elapsed.TotalMilliseconds;
    string end;
    try { while (await stream.MoveNextAsync()) { } end = "completed"; } catch (Exception e) { end = e.GetType().Name; }
    Console.WriteLine($"Dispose returned after {disposeMs:F1} ms; stream ended after {clock.Elapsed.TotalMilliseconds:F1} ms ({end})");
}
