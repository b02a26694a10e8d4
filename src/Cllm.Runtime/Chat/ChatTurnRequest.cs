using Cllm.Text;

namespace Cllm.Chat;

/// <summary>What the next assistant turn is asked for: the conversation, the tools it may call, and its shape.</summary>
public sealed record ChatTurnRequest
{
    public required IReadOnlyList<ChatTurn> Turns { get; init; }

    /// <summary>Tools under the names the model sees them by.</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];

    public ToolChoice ToolChoice { get; init; } = ToolChoice.Auto;

    /// <summary>Whether one turn may hold several calls; false keeps the first.</summary>
    public bool AllowMultipleToolCalls { get; init; } = true;

    /// <summary>The answer is one JSON value: the turn ends where the first complete object or array ends.</summary>
    public bool JsonOutput { get; init; }

    /// <summary>The JSON schema the answer should match (compact JSON), when <see cref="JsonOutput"/> gives one.</summary>
    public string? JsonSchema { get; init; }
}
