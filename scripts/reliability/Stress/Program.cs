using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cllm;
using Cllm.Extensions.AI;
using Cllm.Training.Data;
using Microsoft.Extensions.AI;

// Many concurrent streams through one CllmChatClient, a share of them cancelled at a random moment, for a
// set time. Every finished answer must equal the sequential (greedy) reference for its prompt, every
// cancelled one a prefix of it; the process's memory after a full GC must not grow.
// Usage: Stress <model folder> [streams=64] [seconds=600] [cancel share=0.3] [max tokens=48]
var model = args.Length > 0 ? args[0] : "models/cllm-tiny";
int streams = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 64;
double seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 600;
double cancelShare = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 0.3;
int maxTokens = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 48;

using var client = new CllmChatClient(new CllmChatClientOptions { ModelPath = model, Engine = new EngineOptions { Threads = 1 } });
// Held-out sql and math questions (system + user turns; the tool domain needs tool results to go on).
var prompts = new TaskGenerator(7).Generate(48, Split.HeldOut).Where(c => c.Domain != "tool")
    .Select(c => c.Turns.TakeWhile(t => t.Role is "system" or "user")
        .Select(t => new ChatMessage(t.Role == "system" ? ChatRole.System : ChatRole.User, t.Content)).ToList())
    .Where(m => m.Count > 0).Take(16).ToList();
var options = new ChatOptions { MaxOutputTokens = maxTokens, Temperature = 0 };

var reference = new List<string>();
foreach (var p in prompts) reference.Add((await client.GetResponseAsync(p, options)).Text);
Console.WriteLine($"model {model}: {prompts.Count} prompts, references done; {streams} streams for {seconds} s, cancel share {cancelShare}");

static long Rss()
{
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    using var self = Process.GetCurrentProcess();
    self.Refresh();
    return self.WorkingSet64;
}

long finished = 0, cancelled = 0, wrong = 0, failed = 0;
var cancelLatencies = new System.Collections.Concurrent.ConcurrentBag<double>();
var rss = new List<(double At, long Bytes)>();
var clock = Stopwatch.StartNew();
var end = TimeSpan.FromSeconds(seconds);
var errors = new System.Collections.Concurrent.ConcurrentBag<string>();

async Task Worker(int id)
{
    var random = new Random(id);
    while (clock.Elapsed < end)
    {
        int i = random.Next(prompts.Count);
        using var cancel = new CancellationTokenSource();
        bool willCancel = random.NextDouble() < cancelShare;
        if (willCancel) cancel.CancelAfter(random.Next(1, 400));
        var text = new StringBuilder();
        try
        {
            await foreach (var update in client.GetStreamingResponseAsync(prompts[i], options, cancel.Token))
                text.Append(update.Text);
            if (text.ToString() != reference[i])
            {
                Interlocked.Increment(ref wrong);
                errors.Add($"prompt {i}: got '{text}' expected '{reference[i]}'");
            }
            else Interlocked.Increment(ref finished);
        }
        catch (OperationCanceledException)
        {
            var since = clock.Elapsed;
            Interlocked.Increment(ref cancelled);
            if (!reference[i].StartsWith(text.ToString(), StringComparison.Ordinal))
            {
                Interlocked.Increment(ref wrong);
                errors.Add($"prompt {i} (cancelled): '{text}' is not a prefix of '{reference[i]}'");
            }
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref failed);
            var at = e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("Cllm.", StringComparison.Ordinal))?.Trim();
            errors.Add($"prompt {i}{(willCancel ? " (to be cancelled)" : "")}: {e.GetType().Name}: {e.Message.Split('\n')[0]} {at}");
        }
    }
}

var sampler = Task.Run(async () =>
{
    while (clock.Elapsed < end)
    {
        rss.Add((clock.Elapsed.TotalSeconds, Rss()));
        await Task.Delay(TimeSpan.FromSeconds(Math.Max(1, seconds / 20)));
    }
});
await Task.WhenAll(Enumerable.Range(0, streams).Select(i => Task.Run(() => Worker(i))));
await sampler;
rss.Add((clock.Elapsed.TotalSeconds, Rss()));

// Growth is measured from the first sample after a warm-up (a tenth of the run, but at least a third of a
// short run), when allocator arenas and caches of 64 threads have filled.
var warm = rss.First(r => r.At >= Math.Max(seconds / 10, Math.Min(30, seconds / 3)) || r == rss[^1]);
var last = rss[^1];
double growth = 100.0 * (last.Bytes - warm.Bytes) / warm.Bytes;
Console.WriteLine($"elapsed {clock.Elapsed.TotalSeconds:F0} s; requests: {finished} finished, {cancelled} cancelled, {failed} failed; " +
                  $"wrong answers: {wrong}");
Console.WriteLine($"RSS after GC: {warm.Bytes / 1048576.0:F1} MiB at {warm.At:F0} s -> {last.Bytes / 1048576.0:F1} MiB at {last.At:F0} s " +
                  $"({growth:+0.0;-0.0}%); samples: {string.Join(" ", rss.Select(r => (r.Bytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture)))}");
foreach (var e in errors.Take(5)) Console.WriteLine("  " + e);
return wrong == 0 && failed == 0 && growth < 5 ? 0 : 1;
