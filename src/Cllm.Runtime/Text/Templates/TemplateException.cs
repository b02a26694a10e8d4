namespace Cllm.Text.Templates;

/// <summary>
/// A chat template that cannot be parsed or rendered: the message names the template, the line and column
/// (1-based) and what was expected. <c>raise_exception(...)</c> in a template throws this too.
/// </summary>
public sealed class TemplateException : Exception
{
    public TemplateException(string templateName, int line, int column, string detail, Exception? inner = null)
        : base($"Chat template '{templateName}', line {line}, column {column}: {detail}", inner)
    {
        TemplateName = templateName;
        Line = line;
        Column = column;
        Detail = detail;
    }

    public string TemplateName { get; }

    public int Line { get; }

    public int Column { get; }

    /// <summary>The message without the template name and position.</summary>
    public string Detail { get; }
}
