namespace Cllm.Text.Templates;

/// <summary>Builds <see cref="TemplateException"/>s with the line and column of a source offset.</summary>
internal static class TemplateErrors
{
    public static TemplateException At(string name, string source, int offset, string detail, Exception? inner = null)
    {
        offset = Math.Clamp(offset, 0, source.Length);
        int line = 1, lineStart = 0;
        for (int i = 0; i < offset; i++)
        {
            if (source[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return new TemplateException(name, line, offset - lineStart + 1, detail, inner);
    }
}
