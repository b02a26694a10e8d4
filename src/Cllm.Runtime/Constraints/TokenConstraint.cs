using System.Text;
using Cllm.Text;

namespace Cllm.Constraints;

/// <summary>
/// A grammar compiled for one vocabulary: set it as <see cref="Decoding.GenerationOptions.Constraint"/> and every
/// decoder (autoregressive, Jacobi, lookahead) only chooses tokens that keep the generated text a prefix of the
/// grammar: before a token is chosen, the logits of the tokens it forbids become -inf. The stop ids are allowed
/// only once the text is complete, and the generation ends by itself (finish reason Stop, no stop token) when the
/// text is complete and nothing may follow. Tokens are also held to the token budget (MaxNewTokens and the
/// context): a token is allowed only if the text can still be completed in the tokens left, so output stops
/// complete unless the budget is smaller than the shortest completion from the start. The text constrained is
/// that of the tokens' pieces (markers such as EOS are never part of it, a tool-call tag token is).
/// Immutable and shareable.
/// </summary>
public sealed class TokenConstraint
{
    TokenConstraint(Grammar grammar, Node root, TokenVocabulary vocabulary)
    {
        (Grammar, Root, Vocabulary) = (grammar, root, vocabulary);
        _ = root.MinLength; // measure once up front
        Initial = ByteState.Start(root);
    }

    public Grammar Grammar { get; }
    public TokenVocabulary Vocabulary { get; }
    internal Node Root { get; }
    internal ByteState Initial { get; }

    /// <summary>Compiles <paramref name="grammar"/> for <paramref name="vocabulary"/>.</summary>
    public static TokenConstraint Create(Grammar grammar, TokenVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(grammar);
        ArgumentNullException.ThrowIfNull(vocabulary);
        return new(grammar, grammar.Build(), vocabulary);
    }

    /// <summary>Compiles <paramref name="grammar"/> for <paramref name="tokenizer"/>'s vocabulary.</summary>
    public static TokenConstraint Create(Grammar grammar, TextTokenizer tokenizer) => Create(grammar, TokenVocabulary.For(tokenizer));

    /// <summary>Any JSON value, or a JSON object (<paramref name="objectOnly"/>, for <c>ChatResponseFormat.Json</c>).</summary>
    public static TokenConstraint Json(TextTokenizer tokenizer, bool objectOnly = true, JsonWhitespace whitespace = JsonWhitespace.Spaced) =>
        Create(Grammar.Json(objectOnly, whitespace), tokenizer);

    /// <summary>JSON matching <paramref name="schemaJson"/>; see <see cref="Grammar.JsonSchema(string, JsonWhitespace)"/>.</summary>
    public static TokenConstraint JsonSchema(string schemaJson, TextTokenizer tokenizer, JsonWhitespace whitespace = JsonWhitespace.Spaced) =>
        Create(Grammar.JsonSchema(schemaJson, whitespace), tokenizer);

    /// <summary>Literal text and grammars one after another, e.g. <c>Sequence(tokenizer, Grammar.Literal("Answer: "), Grammar.Json())</c>.</summary>
    public static TokenConstraint Sequence(TextTokenizer tokenizer, params Grammar[] parts) => Create(Grammar.Sequence(parts), tokenizer);

    /// <summary>One call of one of <paramref name="tools"/>; see <see cref="Grammar.ToolCall"/>. For a required
    /// specific tool pass just that one.</summary>
    public static TokenConstraint ToolCall(TextTokenizer tokenizer, IEnumerable<ToolSchema> tools, string before = "<tool_call>",
        string after = "</tool_call>", JsonWhitespace whitespace = JsonWhitespace.Spaced, string argumentsKey = "arguments") =>
        Create(Grammar.ToolCall(tools, before, after, whitespace, argumentsKey), tokenizer);

    /// <summary>Whether <paramref name="text"/> is a complete text of the grammar (for tests and checks).</summary>
    public bool Accepts(string text) => Initial.Step(Encoding.UTF8.GetBytes(text)) is { IsComplete: true };

    /// <summary>Whether <paramref name="text"/> can still be completed to a text of the grammar.</summary>
    public bool AcceptsPrefix(string text) => Initial.Step(Encoding.UTF8.GetBytes(text)) is not null;

    /// <summary>The state at the start of a generation.</summary>
    internal ConstraintCursor Start() => new(this, Initial, atStart: true);

    public override string ToString() => Grammar.Description;
}

/// <summary>
/// Where a generation stands in its constraint. Immutable: <see cref="Advance"/> returns a new cursor, so a
/// decoder that verifies guesses keeps the cursor of its accepted prefix and branches for free.
/// </summary>
sealed class ConstraintCursor(TokenConstraint constraint, ByteState state, bool atStart)
{
    public TokenConstraint Constraint => constraint;
    public ByteState State => state;
    public bool IsComplete => state.IsComplete;

    /// <summary>Complete, and no byte may follow: the generation is over.</summary>
    public bool IsFinished => state.IsComplete && !state.CanContinue;

    public ConstraintCursor Advance(int token)
    {
        var text = constraint.Vocabulary.TextOf(token, atStart);
        var next = text is null ? null : state.Step(text);
        if (next is null)
            throw new InvalidOperationException(
                $"Token {token} breaks the constraint ({constraint}); the decoder should have masked it.");
        return new ConstraintCursor(constraint, next, atStart && text!.Length == 0);
    }

    /// <summary>
    /// Which of <paramref name="width"/> token ids may come next: text tokens the grammar accepts that leave at
    /// most <paramref name="budget"/> bytes to complete it (at least one token per byte is always possible),
    /// and the stop ids once the text is complete. When the budget rules out every token (it was below the
    /// shortest completion), the budget is dropped.
    /// </summary>
    public bool[] Allowed(int width, int budget, IReadOnlyCollection<int> stopIds)
    {
        budget = Math.Max(budget, 0);
        var (marks, count) = Marks(budget);
        var complete = state.IsComplete;
        if (count == 0 && !complete) (marks, count) = Marks(int.MaxValue);
        var allowed = new bool[width];
        Array.Copy(marks, allowed, Math.Min(width, marks.Length));
        foreach (var id in stopIds)
            if ((uint)id < (uint)width) allowed[id] = complete;
        if (count == 0 && !(complete && stopIds.Count > 0))
            throw new InvalidOperationException(
                $"No token of the vocabulary continues the constrained text ({constraint}); the vocabulary cannot write what the grammar needs next.");
        return allowed;
    }

    /// <summary>The grammar's tokens from this state within <paramref name="budget"/>. The last mask is kept on the
    /// state (inside a string the state stays the same object from token to token) and reused for any budget it
    /// holds for: a mask the budget did not cut holds for every budget that covers its neediest token.</summary>
    (bool[] Marks, int Count) Marks(int budget)
    {
        if (state.Mask is { } cached && cached.AtStart == atStart && cached.HoldsFor(budget)) return (cached.Marks, cached.Count);
        var marks = new bool[constraint.Vocabulary.Size];
        var count = constraint.Vocabulary.Mark(state, budget, atStart, marks, out var cut, out var need);
        state.Mask = new CachedMask(marks, count, budget, cut, need, atStart);
        return (marks, count);
    }
}

/// <summary>A token mask computed for a state with <see cref="Budget"/>: when the budget cut no token, it holds for
/// every budget of at least <see cref="Need"/> (the most bytes an allowed token leaves to complete the value).</summary>
sealed record CachedMask(bool[] Marks, int Count, int Budget, bool Cut, int Need, bool AtStart)
{
    public bool HoldsFor(int budget) => budget == Budget || (!Cut && budget >= Need && budget >= 0);
}
