using Cllm.Model;
using static TorchSharp.torch;

namespace Cllm.Decoding;

/// <summary>
/// Jacobi decoding, and lookahead decoding on top of it. A block holds the last final token (whose keys and
/// values are not cached yet) and n-1 guesses for the tokens after it. One pass runs the model over the block;
/// output i follows input i. Guesses the model agrees with are accepted, and the model's token after the last
/// accepted guess is final too, so a pass makes at least one token final and the tokens are exactly those of
/// autoregressive decoding (greedy: the argmax; sampling: the same seeded draws, see <see cref="Sampler"/>). The KV cache
/// is cut back to the accepted tokens; the remaining outputs (argmax) become the next guesses (the Jacobi
/// update); a block whose guesses are used up starts anew.
/// With an <see cref="NgramPool"/> (lookahead), the same pass also verifies the pooled n-grams that start with
/// the last final token, each as its own branch; the longest accepted draft wins and its cache entries are
/// moved into place.
/// </summary>
static class JacobiDecoder
{
    public static IEnumerable<TokenChunk> Decode(Transformer model, KvCache cache, Run run, NgramPool? pool, BlockSizer? sizer,
        CancellationToken cancellationToken)
    {
        run.Begin();
        cache.Clear();
        var options = run.Options;
        // A block size the caller set is kept; otherwise the sizer picks one per block and learns from whole blocks.
        var adaptive = options.BlockSize is null;
        if (adaptive) sizer ??= new BlockSizer();
        var n = options.BlockSize ?? 16;
        var clock = new System.Diagnostics.Stopwatch();
        var (blockTokens, blockSeconds) = (0, 0.0);
        var guessRandom = new Random(unchecked((int)(options.Seed ?? 0)));
        var sampler = new Sampler(options);

        // Prefill: the prompt, no drafts; only the last position's output matters.
        var first = Verify(model, cache, run.Context.ToArray(), 0, new DraftVerifier(0, []), sampler, run, firstIndex: 0, prefill: true);
        var next = first.Tokens[0];
        var emitted = run.Accept([next]);
        pool?.AddAll(run.Context);
        yield return new TokenChunk(emitted);

        if (adaptive && !sizer!.Calibrated) Calibrate(model, cache, run, sizer, cancellationToken);

        var guesses = new List<int>(n);
        var ages = new List<int>(n); // passes that have predicted each guess's current value in a row; 0 = initial guess
        while (!run.Done)
        {
            if (cancellationToken.IsCancellationRequested) { run.End(FinishReason.Cancelled); yield break; }
            var start = cache.Length;
            if (start + 1 > cache.Capacity) { run.End(FinishReason.Length); yield break; }
            if (guesses.Count == 0)
            {
                if (adaptive)
                {
                    if (blockTokens > 0) sizer!.RecordBlock(n, blockTokens, blockSeconds);
                    n = sizer!.Choose();
                }
                (blockTokens, blockSeconds) = (0, 0.0);
                NewBlock(run, n - 1, guesses, ages, guessRandom);
            }

            // No point guessing past MaxNewTokens or the end of the context.
            var room = Math.Min(run.Remaining - 1, cache.Capacity - start - 1);
            var m = Math.Min(guesses.Count, room);
            var drafts = new List<int[]> { guesses.GetRange(0, m).ToArray() };
            if (pool is not null)
            {
                var left = cache.Capacity - start - 1 - m;
                foreach (var ngram in pool.Get(next))
                {
                    var branch = ngram.AsSpan(1, Math.Min(ngram.Length - 1, Math.Min(room, left))).ToArray();
                    if (branch.Length == 0) break;
                    if (drafts.Any(d => d.AsSpan().StartsWith(branch))) continue; // nothing new to verify
                    drafts.Add(branch);
                    left -= branch.Length;
                }
            }
            var verifier = new DraftVerifier(next, drafts);
            clock.Restart();
            var result = Verify(model, cache, verifier.Tokens, start, verifier, sampler, run, run.Stats.GeneratedTokens, prefill: false);
            var (final, winner, k) = (result.Tokens, result.Draft, result.Accepted);
            blockSeconds += clock.Elapsed.TotalSeconds;
            blockTokens += final.Length;

            // Keep the cache entries of the root and the accepted draft tokens, in order.
            if (winner > 0) cache.Move(start + verifier.Row(winner, 0), start + 1, k);
            cache.Truncate(start + 1 + k);

            // The Jacobi outputs after the accepted ones are the next guesses for their slots (rows 0..m are the
            // root and the guesses, so output i is the guess for the slot of guess i).
            var nextGuesses = new List<int>(n);
            var nextAges = new List<int>(n);
            for (var i = k + 1; i < m; i++)
            {
                var output = result.Argmax[i];
                nextGuesses.Add(output);
                nextAges.Add(output == guesses[i] ? ages[i] + 1 : 1);
            }
            var verifiedAges = ages;
            (guesses, ages) = (nextGuesses, nextAges);
            next = final[^1];

            var before = run.Context.Count;
            emitted = run.Accept(final);
            // Drafted tokens that were emitted (a stop token or MaxNewTokens may cut the pass short).
            var kept = Math.Min(k, emitted.Length - 1);
            run.Stats.FastForwardedTokens += kept;
            if (winner > 0) run.Stats.PooledTokens += kept;
            else
                for (var i = 0; i < kept; i++)
                    if (verifiedAges[i] >= 2) run.Stats.StationaryTokens++;
            if (pool is not null)
            {
                pool.AddWhereRoom([next, .. guesses]);
                pool.AddAll(run.Context, before - pool.N + 1);
            }
            yield return new TokenChunk(emitted);
        }
        // The request's last block counts too: answers are often shorter than a block's life.
        if (adaptive && blockTokens > 0) sizer!.RecordBlock(n, blockTokens, blockSeconds);
    }

    /// <summary>Times passes of 1..32 rows after the prompt (their cache entries are dropped again), once per engine.</summary>
    /// <remarks>Cancellation (or the engine's Dispose) stops it between passes, as it stops decoding; the sizer then
    /// stays uncalibrated and a later request calibrates it.</remarks>
    static void Calibrate(Transformer model, KvCache cache, Run run, BlockSizer sizer, CancellationToken cancellationToken)
    {
        var start = cache.Length;
        if (start + BlockSizer.MaxBlockSize > cache.Capacity) return; // no room: calibrate on a later, shorter request
        var context = run.Context;
        var tokens = Enumerable.Range(0, BlockSizer.MaxBlockSize).Select(i => context[i % context.Count]).ToArray();
        try
        {
            sizer.Calibrate(rows =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                Decoder.Pass(model, cache, tokens.AsSpan(0, rows), start, lastOnly: false, logits => Decoder.Argmax(logits));
                cache.Truncate(start);
            });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            cache.Truncate(start); // the decoding loop sees the cancellation next
        }
    }

    readonly record struct Verified(int[] Tokens, int Draft, int Accepted, int[] Argmax);

    /// <summary>Runs the pass and walks the drafts against the tokens the sampler chooses after each row.</summary>
    static Verified Verify(Transformer model, KvCache cache, int[] tokens, int start, DraftVerifier verifier, Sampler sampler,
        Run run, int firstIndex, bool prefill)
    {
        return Decoder.Pass(model, cache, tokens, start, lastOnly: prefill, logits =>
        {
            var argmax = Decoder.Argmax(logits);
            if (run.Cursor is { } cursor)
            {
                var constrained = verifier.Walk(ConstrainedChooser(run, sampler, logits, verifier, firstIndex, cursor));
                return new Verified(constrained.Tokens, constrained.Draft, constrained.Accepted, argmax);
            }
            var chosen = sampler.Greedy ? argmax : sampler.Choose(logits, [.. verifier.Depths.Select(d => firstIndex + d)]);
            var (final, draft, accepted) = verifier.Walk(chosen);
            return new Verified(final, draft, accepted, argmax);
        }, verifier.Layout);
    }

    /// <summary>
    /// Chooses row by row along the accepted prefix: row i's mask comes from the constraint's state after the tokens
    /// chosen before it, exactly as autoregressive decoding would have it. Ends the walk after a stop token, when
    /// the constrained text is finished, or at the token limit.
    /// </summary>
    static Func<int, int> ConstrainedChooser(Run run, Sampler sampler, Tensor logits, DraftVerifier verifier, int firstIndex,
        Constraints.ConstraintCursor cursor)
    {
        var ended = false;
        return row =>
        {
            if (ended) return -1;
            var index = firstIndex + verifier.Depths[row];
            var token = run.ChooseConstrained(sampler, logits, row, index, cursor);
            if (run.IsStop(token)) ended = true;
            else
            {
                cursor = cursor.Advance(token);
                ended = cursor.IsFinished || index + 1 >= run.TokenLimit;
            }
            return token;
        };
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
    internal static void LookupGuesses(List<int> context, int count, List<int> guesses)
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
