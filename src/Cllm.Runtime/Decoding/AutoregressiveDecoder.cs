using Cllm.Model;

namespace Cllm.Decoding;

/// <summary>One token per forward pass, greedy or sampled: the baseline every other decoder must match.</summary>
static class AutoregressiveDecoder
{
    public static IEnumerable<TokenChunk> Decode(Transformer model, KvCache cache, Run run, CancellationToken cancellationToken)
    {
        run.Begin();
        cache.Clear();
        var sampler = new Sampler(run.Options);
        var next = Decoder.Pass(model, cache, run.Context.ToArray(), 0, lastOnly: true, logits => Choose(run, sampler, logits, 0));
        while (true)
        {
            var emitted = run.Accept([next]);
            yield return new TokenChunk(emitted);
            if (run.Done) yield break;
            if (cancellationToken.IsCancellationRequested) { run.End(FinishReason.Cancelled); yield break; }
            if (cache.Length + 1 > cache.Capacity) { run.End(FinishReason.Length); yield break; }
            var index = run.Stats.GeneratedTokens;
            next = Decoder.Pass(model, cache, [next], cache.Length, lastOnly: true, logits => Choose(run, sampler, logits, index));
        }
    }

    static int Choose(Run run, Sampler sampler, TorchSharp.torch.Tensor logits, int index) =>
        run.Cursor is { } cursor ? run.ChooseConstrained(sampler, logits, 0, index, cursor) : sampler.Choose(logits, [index])[0];
}
