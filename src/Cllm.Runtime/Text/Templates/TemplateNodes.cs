namespace Cllm.Text.Templates;

// The syntax tree. Every node keeps the source offset it starts at, for error messages. The small node types
// live together here because they are only meaningful as a set.

internal abstract record Node(int Offset);

internal sealed record TextNode(int Offset, string Text) : Node(Offset);

internal sealed record OutputNode(int Offset, Expr Value) : Node(Offset);

internal sealed record IfNode(int Offset, IReadOnlyList<(Expr Condition, IReadOnlyList<Node> Body)> Branches,
    IReadOnlyList<Node>? Else) : Node(Offset);

internal sealed record ForNode(int Offset, IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter,
    IReadOnlyList<Node> Body, IReadOnlyList<Node>? Else) : Node(Offset);

/// <summary><c>{% set %}</c>: to names (unpacking several), to <c>ns.attr</c>, or a block's output.</summary>
internal sealed record SetNode(int Offset, IReadOnlyList<string> Names, Expr? Namespace, Expr? Value,
    IReadOnlyList<Node>? Body) : Node(Offset);

internal sealed record MacroNode(int Offset, string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters,
    IReadOnlyList<Node> Body) : Node(Offset);

/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>: the macro sees the body as <c>caller()</c>.</summary>
internal sealed record CallBlockNode(int Offset, CallExpr Call, IReadOnlyList<(string Name, Expr? Default)> Parameters,
    IReadOnlyList<Node> Body) : Node(Offset);

internal sealed record FilterBlockNode(int Offset, string Filter, IReadOnlyList<Expr> Args,
    IReadOnlyList<(string Name, Expr Value)> Kwargs, IReadOnlyList<Node> Body) : Node(Offset);

internal sealed record BreakNode(int Offset) : Node(Offset);

internal sealed record ContinueNode(int Offset) : Node(Offset);

internal abstract record Expr(int Offset);

internal sealed record LiteralExpr(int Offset, object? Value) : Expr(Offset);

internal sealed record NameExpr(int Offset, string Name) : Expr(Offset);

internal sealed record ListExpr(int Offset, IReadOnlyList<Expr> Items) : Expr(Offset)
{
    /// <summary>Written <c>(a, b)</c>: a tuple.</summary>
    public bool IsTuple { get; init; }
}

internal sealed record DictExpr(int Offset, IReadOnlyList<(Expr Key, Expr Value)> Items) : Expr(Offset);

internal sealed record AttributeExpr(int Offset, Expr Target, string Name) : Expr(Offset);

internal sealed record IndexExpr(int Offset, Expr Target, Expr Index) : Expr(Offset);

internal sealed record SliceExpr(int Offset, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Offset);

internal sealed record CallExpr(int Offset, Expr Callee, IReadOnlyList<Expr> Args,
    IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr(Offset);

internal sealed record FilterExpr(int Offset, Expr Value, string Name, IReadOnlyList<Expr> Args,
    IReadOnlyList<(string Name, Expr Value)> Kwargs) : Expr(Offset);

internal sealed record TestExpr(int Offset, Expr Value, string Name, IReadOnlyList<Expr> Args, bool Negated) : Expr(Offset);

internal sealed record UnaryExpr(int Offset, string Operator, Expr Operand) : Expr(Offset);

internal sealed record BinaryExpr(int Offset, string Operator, Expr Left, Expr Right) : Expr(Offset);

internal sealed record ConditionalExpr(int Offset, Expr Condition, Expr Then, Expr? Else) : Expr(Offset);
