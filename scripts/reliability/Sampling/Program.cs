using System.Globalization;
using Cllm;
using Cllm.Decoding;
using Cllm.Model;
using Cllm.Text;
using Cllm.Training.Data;
using static TorchSharp.torch;

// How exact is "the same tokens with every decoder" when sampling? Two measurements on the default model:
// 1. Direct: seeded sampled runs with autoregressive, Jacobi and lookahead decoding; how many runs differ.
// 2. Why: a k-token forward pass computes the same logits as k one-token passes only up to float rounding.
//    For each sampled position the script computes the sampling CDF both ways; the share of uniform draws
//    that pick a different token is sum_k |CDF_one(k) - CDF_block(k)| (the draw must fall between the two
//    versions of a boundary). Averaged over positions that is the chance per token that a decoder differs.
// Usage: Sampling <model folder> [prompts=64] [seeds=3] [max tokens=48] [temperature=0.8] [block=16]
var folder = args.Length > 0 ? args[0] : "models/cllm-tiny";
int promptCount = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 64;
int seeds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
int maxTokens = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 48;
float temperature = args.Length > 4 ? float.Parse(args[4], CultureInfo.InvariantCulture) : 0.8f;
int block = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 16;

using var engine = CllmEngine.Load(folder, new EngineOptions { Threads = 1 });
var model = engine.Model;
var prompts = new TaskGenerator(7).Generate(promptCount * 2, Split.HeldOut).Where(c => c.Domain != "tool").Take(promptCount)
    .Select(c => engine.Tokenizer.Encode(CllmChatFormat.Render(c.Turns.TakeWhile(t => t.Role is "system" or "user").ToList(), c.Tools, true)))
    .ToList();

// 1. Direct comparison.
int runs = 0, differ = 0;
long tokens = 0;
var samples = new List<(int[] Prompt, int[] Output)>();
for (int s = 0; s < seeds; s++)
    foreach (var prompt in prompts)
    {
        int[] Run(DecoderKind kind) => engine.Generate(prompt, new GenerationOptions
        {
            Decoder = kind, MaxNewTokens = maxTokens, Temperature = temperature, Seed = 1000 + s, BlockSize = block,
        }).SelectMany(c => c.Tokens).ToArray();
        var ar = Run(DecoderKind.Autoregressive);
        runs++;
        tokens += ar.Length;
        if (!ar.SequenceEqual(Run(DecoderKind.Jacobi)) || !ar.SequenceEqual(Run(DecoderKind.Lookahead))) differ++;
        if (s == 0) samples.Add((prompt, ar));
    }
Console.WriteLine($"direct: {runs} seeded sampled runs ({tokens} tokens, T={temperature}, block {block}): " +
                  $"{differ} differ between autoregressive, Jacobi and lookahead");

// 2. Rounding between one-token and block passes, as flip probability per sampled token.
double flipSum = 0, maxCdfGap = 0;
long rows = 0;
using var cache = new KvCache(model.Config, engine.ContextLength, model.DType, model.Device);
Tensor Cdf(Tensor logits)
{
    var p = ((logits - logits.amax([-1L], keepdim: true)) / temperature).softmax(-1).to(float64).cumsum(-1);
    return p / p.narrow(-1, p.shape[^1] - 1, 1);
}
using (no_grad())
    foreach (var (prompt, output) in samples)
    {
        using var scope = NewDisposeScope();
        var all = prompt.Concat(output).ToArray();
        int n = Math.Min(output.Length, block);
        // One pass over the block's n positions (what Jacobi verification computes) ...
        cache.Clear();
        model.Forward(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0), 0, cache, lastPositionOnly: true);
        var blockLogits = model.Forward(tensor(output.Take(n).Select(x => (long)x).ToArray()).unsqueeze(0), prompt.Length, cache)[0];
        // ... against n one-token passes (what autoregressive decoding computes).
        cache.Clear();
        model.Forward(tensor(prompt.Select(x => (long)x).ToArray()).unsqueeze(0), 0, cache, lastPositionOnly: true);
        var oneLogits = new List<Tensor>();
        for (int i = 0; i < n; i++)
            oneLogits.Add(model.Forward(tensor(new long[] { output[i] }).unsqueeze(0), prompt.Length + i, cache)[0, -1]);
        var gap = (Cdf(blockLogits) - Cdf(stack(oneLogits))).abs();
        flipSum += gap.sum().item<double>();
        maxCdfGap = Math.Max(maxCdfGap, gap.max().item<double>());
        rows += n;
    }
double perToken = flipSum / rows;
double expectedRuns = runs * (1 - Math.Pow(1 - perToken, (double)tokens / runs));
Console.WriteLine($"rounding: {rows} positions; largest CDF difference between a {block}-token pass and one-token passes {maxCdfGap:E1}; " +
                  $"chance that a draw falls between the two versions of a boundary: {perToken:E2} per token " +
                  $"(expected differing runs of {tokens / runs} tokens: {expectedRuns:F2} of {runs})");
