namespace Cllm.Text.Templates;

internal enum TokenKind
{
    Text,
    ExpressionOpen,
    ExpressionClose,
    StatementOpen,
    StatementClose,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One lexed piece; <see cref="Offset"/> is its position in the template source, for error messages.</summary>
internal readonly record struct TemplateToken(TokenKind Kind, string Value, int Offset);
