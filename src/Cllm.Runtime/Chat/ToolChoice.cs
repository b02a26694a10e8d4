namespace Cllm.Chat;

/// <summary>Whether the assistant's turn may answer in text, must call some offered tool, or must call one tool.</summary>
public sealed record ToolChoice
{
    ToolChoice(string? requiredName, bool required) => (RequiredName, IsRequired) = (requiredName, required);

    /// <summary>The model chooses: text, or calls of offered tools.</summary>
    public static ToolChoice Auto { get; } = new(null, false);

    /// <summary>The turn is a call of one of the offered tools.</summary>
    public static ToolChoice Any { get; } = new(null, true);

    /// <summary>The turn is a call of the tool named <paramref name="name"/> (as offered).</summary>
    public static ToolChoice Tool(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new(name, true);
    }

    public bool IsRequired { get; }

    /// <summary>The tool a required call must name; null for Auto and Any.</summary>
    public string? RequiredName { get; }
}
