using Cllm.Model;

namespace Cllm.Decoding;

/// <summary>
/// Greedy Jacobi decoding. A block holds the last final token (whose keys/values are not cached yet) and
/// n-1 guesses for the tokens after it. One pass runs the model over the block; output i is the argmax
/// after input i. Guesses equal to the output before them are confirmed, and the output after the last
/// confirmed guess is final too, so a pass makes at least one token final and its tokens are exactly
/// greedy autoregressive decoding's. The KV cache is cut back to the confirmed inputs; the remaining
/// outputs become the next guesses (the Jacobi update); a block whose guesses are used up starts anew.
/// </summary>
static class JacobiDecoder
{
    public static IEnumerable<TokenChunk> Decode(Transformer model, KvCache cache, Run run, CancellationToken cancellationToken)
    {
        run.Begin();
        cache.Clear();
        var n = run.Options.BlockSize;
        var random = new Random(unchecked((int)(run.Options.Seed ?? 0)));
        var next = Decoder.Pass(model, cache, run.Context.ToArray(), 0, lastOnly: true, l => Decoder.Argmax(l)[0]);
        var emitted = run.Accept([next]);
        yield return new TokenChunk(emitted);

        var guesses = new List<int>(n);
        var ages = new List<int>(n); // passes that have predicted each guess's current value in a row; 0 = initial guess
        while (!run.Done)
        {
            if (cancellationToken.IsCancellationRequested) { run.End(FinishReason.Cancelled); yield break; }
            var start = cache.Length;
            if (start + 1 > cache.Capacity) { run.End(FinishReason.Length); yield break; }
            if (guesses.Count == 0) NewBlock(run, n - 1, guesses, ages, random);

            // No point guessing past MaxNewTokens or the end of the context.
            var m = Math.Min(guesses.Count, Math.Min(run.Remaining - 1, cache.Capacity - start - 1));
            var input = new int[m + 1];
            input[0] = next;
            guesses.CopyTo(0, input, 1, m);
            var output = Decoder.Pass(model, cache, input, start, lastOnly: false, Decoder.Argmax);

            var confirmed = 0;
            while (confirmed < m && guesses[confirmed] == output[confirmed]) confirmed++;
            cache.Truncate(start + 1 + confirmed);
            run.Stats.FastForwardedTokens += confirmed;
            for (var i = 0; i < confirmed; i++)
                if (ages[i] >= 2) run.Stats.StationaryTokens++;

            // The outputs after the first wrong guess are the next guesses for their slots.
            var nextGuesses = new List<int>(n);
            var nextAges = new List<int>(n);
            for (var i = confirmed + 1; i < m; i++)
            {
                nextGuesses.Add(output[i]);
                nextAges.Add(output[i] == guesses[i] ? ages[i] + 1 : 1);
            }
            (guesses, ages) = (nextGuesses, nextAges);
            next = output[confirmed];

            emitted = run.Accept(output.AsSpan(0, confirmed + 1));
            yield return new TokenChunk(emitted);
        }
    }

    static void NewBlock(Run run, int count, List<int> guesses, List<int> ages, Random random)
    {
        var context = run.Context;
        if (run.Options.InitialGuess == JacobiGuess.PromptLookup)
            LookupGuesses(context, count, guesses);
        while (guesses.Count < count) guesses.Add(context[random.Next(context.Count)]);
        ages.Clear();
        ages.AddRange(Enumerable.Repeat(0, guesses.Count));
    }

    /// <summary>Copies what followed the latest earlier occurrence of the context's last two tokens (or last
    /// token) — text often repeats itself, and a CLLM's output often copies its prompt.</summary>
    static void LookupGuesses(List<int> context, int count, List<int> guesses)
    {
        var last = context.Count - 1;
        for (var key = 2; key >= 1; key--)
        {
            for (var i = last - 1; i >= key - 1; i--)
            {
                var match = true;
                for (var j = 0; j < key && match; j++) match = context[i - j] == context[last - j];
                if (!match) continue;
                for (var k = i + 1; k <= last && guesses.Count < count; k++) guesses.Add(context[k]);
                return;
            }
        }
    }
}
