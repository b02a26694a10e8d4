using Cllm.Constraints;
using Cllm.Decoding;
using Cllm.Text;

namespace Cllm.Chat;

/// <summary>
/// An assistant turn ready to generate: the prompt (rendered by the chat format and encoded so that only the
/// format's markers are control tokens), what stops it, and a reader for its output. This is the one place
/// where a request's shape (<see cref="ChatTurnRequest.ToolChoice"/>, JSON) turns into decoding settings, so a
/// decoding constraint plugs in at <see cref="Configure"/>.
/// </summary>
public sealed class PreparedTurn
{
    PreparedTurn(IChatFormat format, TextTokenizer tokenizer, ChatTurnRequest request, ChatPrompt prompt, ChatStops stops, string? forced)
    {
        Format = format;
        Tokenizer = tokenizer;
        Request = request;
        Prompt = prompt;
        Stops = stops;
        ForcedPrefix = forced;
        PromptIds = prompt.Encode(tokenizer, addBos: !format.RendersBos); // a model's own template writes its BOS
    }

    /// <summary>Renders and encodes <paramref name="request"/>; <paramref name="stopSequences"/> are the caller's stop texts.</summary>
    /// <exception cref="ArgumentException">A required tool call without tools, or naming a tool that is not offered.</exception>
    /// <exception cref="NotSupportedException">Tools for a format without tool calling.</exception>
    public static PreparedTurn Create(IChatFormat format, TextTokenizer tokenizer, IEnumerable<int> eosIds, ChatTurnRequest request,
        IEnumerable<string>? stopSequences = null)
    {
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(request);
        var tools = request.Tools;
        var duplicate = tools.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"Two tools are named '{duplicate.Key}'; tool names must be unique.", nameof(request));
        var prompt = format.RenderPrompt(request.Turns, tools.Count == 0 ? null : tools, addGenerationPrompt: true);
        string? forced = null;
        TokenConstraint? constraint = null;
        if (request.JsonOutput && !request.ToolChoice.IsRequired)
            constraint = request.JsonSchema is { } schema ? TokenConstraint.JsonSchema(schema, tokenizer) : TokenConstraint.Json(tokenizer);
        if (request.ToolChoice.IsRequired)
        {
            if (tools.Count == 0)
                throw new ArgumentException("A tool call is required but no tools are offered; offer tools or use ToolChoice.Auto.", nameof(request));
            string? name = request.ToolChoice.RequiredName;
            if (name is not null && tools.All(t => t.Name != name))
                throw new ArgumentException(
                    $"The required tool '{name}' is not among the offered tools ({string.Join(", ", tools.Select(t => t.Name))}).", nameof(request));
            var offered = tools.Where(t => name is null || t.Name == name).Select(t => new ToolSchema(t.Name, t.ParametersJsonSchema()));
            (forced, constraint) = RequiredCall(format, tokenizer, offered, name ?? (tools.Count == 1 ? tools[0].Name : null));
            // The call's opening marker is the format's; the tool name after it is the application's text.
            string start = format.ToolCallStart ?? "";
            if (forced.Length > 0)
                prompt = forced.StartsWith(start, StringComparison.Ordinal)
                    ? prompt.Append(new PromptSegment(start, true)).Append(new PromptSegment(forced[start.Length..], false))
                    : prompt.Append(new PromptSegment(forced, true));
        }

        return new PreparedTurn(format, tokenizer, request, prompt, ChatStops.For(format, tokenizer, eosIds, stopSequences), forced)
        {
            Constraint = constraint,
        };
    }

    // A required call: the text forced after the generation prompt, and the grammar that guarantees the rest is one
    // valid call of an offered tool in the family's own syntax. Tagged JSON (the cllm format, ChatML/Hermes, Qwen):
    // the opening tag, then {"name", "arguments"} and the closing tag. Mistral: [TOOL_CALLS] and a one-call JSON array.
    // Llama 3.1: the bare {"name", "parameters"} object the model writes, then its end-of-message id. Formats with no
    // known call syntax get only the forced opening.
    static (string Forced, TokenConstraint? Constraint) RequiredCall(IChatFormat format, TextTokenizer tokenizer,
        IEnumerable<ToolSchema> offered, string? onlyTool)
    {
        switch (format.ToolCallStart)
        {
            case "<tool_call>":
            {
                string forced = format.ForcedToolCallPrefix(null);
                bool spaced = forced.EndsWith('\n');
                return (forced, TokenConstraint.ToolCall(tokenizer, offered, before: "", after: spaced ? "\n</tool_call>" : "</tool_call>",
                    spaced ? JsonWhitespace.Spaced : JsonWhitespace.Compact));
            }
            case "[TOOL_CALLS]":
                return ("[TOOL_CALLS][", TokenConstraint.ToolCall(tokenizer, offered, before: "", after: "]"));
            case "{\"name\"":
                return ("", TokenConstraint.ToolCall(tokenizer, offered, before: "", after: "", argumentsKey: "parameters"));
            default:
                return (format.ForcedToolCallPrefix(onlyTool), null);
        }
    }

    public IChatFormat Format { get; }
    public TextTokenizer Tokenizer { get; }
    public ChatTurnRequest Request { get; }
    public ChatPrompt Prompt { get; }
    public int[] PromptIds { get; }
    public ChatStops Stops { get; }

    /// <summary>The grammar the output must follow (a required tool call, JSON, a JSON schema); null when free.</summary>
    public TokenConstraint? Constraint { get; private init; }

    /// <summary>Text put after the generation prompt so the turn continues inside a tool call; null when none is required.</summary>
    public string? ForcedPrefix { get; }

    /// <summary>
    /// The generation settings for this turn: <paramref name="options"/> with the turn's stop ids. Constraints on
    /// the output (a required call's grammar, a JSON schema) belong here, so every decoder gets them.
    /// </summary>
    public GenerationOptions Configure(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options with { StopTokenIds = Stops.Ids, Constraint = options.Constraint ?? Constraint };
    }

    /// <summary>A reader for this turn's generated tokens.</summary>
    public TurnReader CreateReader() => new(this);
}
