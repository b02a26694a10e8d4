using System.Globalization;

namespace Cllm.Text.Templates;

/// <summary>Recursive-descent parser from tokens to the tree, with Jinja's operator precedence.</summary>
internal sealed class TemplateParser
{
    readonly List<TemplateToken> _tokens;
    readonly string _source;
    readonly string _name;
    int _at;

    TemplateParser(List<TemplateToken> tokens, string source, string name)
    {
        _tokens = tokens;
        _source = source;
        _name = name;
    }

    public static IReadOnlyList<Node> Parse(string source, string name)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source, name), source, name);
        var body = parser.ParseBody([], out _);
        return body;
    }

    TemplateToken Current => _tokens[_at];

    TemplateToken Next() => _tokens[_at++];

    // Nodes until a statement whose keyword is in `ends` (consumed up to the keyword) or the end of input.
    List<Node> ParseBody(string[] ends, out string? endedBy)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (ends.Length > 0) throw Error(token, $"unexpected end of template; expected {Expected(ends)}.");
                    endedBy = null;
                    return nodes;
                case TokenKind.Text:
                    _at++;
                    nodes.Add(new TextNode(token.Offset, token.Value));
                    break;
                case TokenKind.ExpressionOpen:
                    _at++;
                    var value = ParseExpression();
                    Expect(TokenKind.ExpressionClose, "'}}'");
                    nodes.Add(new OutputNode(token.Offset, value));
                    break;
                case TokenKind.StatementOpen:
                    var keyword = _tokens[_at + 1];
                    if (keyword.Kind == TokenKind.Name && ends.Contains(keyword.Value))
                    {
                        _at += 2;
                        endedBy = keyword.Value;
                        return nodes;
                    }

                    _at++;
                    if (ParseStatement(token) is { } node) nodes.Add(node);
                    break;
                default:
                    throw Error(token, $"unexpected '{token.Value}'.");
            }
        }
    }

    static string Expected(string[] ends) => string.Join(" or ", ends.Select(e => $"'{{% {e} %}}'"));

    Node? ParseStatement(TemplateToken open)
    {
        var keyword = Expect(TokenKind.Name, "a statement keyword");
        switch (keyword.Value)
        {
            case "if": return ParseIf(open);
            case "for": return ParseFor(open);
            case "set": return ParseSet(open);
            case "macro": return ParseMacro(open);
            case "call": return ParseCallBlock(open);
            case "filter": return ParseFilterBlock(open);
            case "break":
                CloseStatement();
                return new BreakNode(open.Offset);
            case "continue":
                CloseStatement();
                return new ContinueNode(open.Offset);
            case "generation":
                // transformers' marker for assistant-generated spans: renders its body unchanged.
                CloseStatement();
                var body = ParseBody(["endgeneration"], out _);
                CloseStatement();
                return new IfNode(open.Offset, [(new LiteralExpr(open.Offset, true), body)], null);
            default:
                throw Error(keyword, $"unknown statement '{keyword.Value}' (supported: if, for, set, macro, call, filter, " +
                    "break, continue, generation, raw).");
        }
    }

    IfNode ParseIf(TemplateToken open)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = ParseExpression();
        CloseStatement();
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"], out var end);
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseExpression();
                CloseStatement();
                continue;
            }

            CloseStatement();
            if (end == "endif") return new IfNode(open.Offset, branches, null);
            var elseBody = ParseBody(["endif"], out _);
            CloseStatement();
            return new IfNode(open.Offset, branches, elseBody);
        }
    }

    ForNode ParseFor(TemplateToken open)
    {
        var targets = new List<string> { Expect(TokenKind.Name, "a loop variable").Value };
        while (AcceptOperator(","))
            targets.Add(Expect(TokenKind.Name, "a loop variable").Value);
        var inToken = Expect(TokenKind.Name, "'in'");
        if (inToken.Value != "in") throw Error(inToken, $"expected 'in' after the loop variables, got '{inToken.Value}'.");
        var iterable = ParseTernaryless();
        Expr? filter = null;
        if (Current is { Kind: TokenKind.Name, Value: "if" })
        {
            _at++;
            filter = ParseTernaryless();
        }

        if (Current is { Kind: TokenKind.Name, Value: "recursive" }) throw Error(Current, "recursive loops are not supported.");
        CloseStatement();
        var body = ParseBody(["else", "endfor"], out var end);
        List<Node>? elseBody = null;
        if (end == "else")
        {
            CloseStatement();
            elseBody = ParseBody(["endfor"], out _);
        }

        CloseStatement();
        return new ForNode(open.Offset, targets, iterable, filter, body, elseBody);
    }

    SetNode ParseSet(TemplateToken open)
    {
        var first = Expect(TokenKind.Name, "a variable name");
        if (AcceptOperator("."))
        {
            var attribute = Expect(TokenKind.Name, "an attribute name");
            ExpectOperator("=");
            var value = ParseExpression();
            CloseStatement();
            return new SetNode(open.Offset, [attribute.Value], new NameExpr(first.Offset, first.Value), value, null);
        }

        var names = new List<string> { first.Value };
        while (AcceptOperator(","))
            names.Add(Expect(TokenKind.Name, "a variable name").Value);
        if (AcceptOperator("="))
        {
            var value = ParseExpression();
            CloseStatement();
            return new SetNode(open.Offset, names, null, value, null);
        }

        if (names.Count > 1) throw Error(Current, "a block '{% set %}' takes one name.");
        Expr? filtered = null;
        if (Current is { Kind: TokenKind.Operator, Value: "|" })
            filtered = ParseFilters(new NameExpr(Current.Offset, "\u0000block"));
        CloseStatement();
        var body = ParseBody(["endset"], out _);
        CloseStatement();
        if (filtered is not null)
            body = [new FilterBlockNode(open.Offset, "", [filtered], [], body)];
        return new SetNode(open.Offset, names, null, null, body);
    }

    MacroNode ParseMacro(TemplateToken open)
    {
        var name = Expect(TokenKind.Name, "a macro name");
        var parameters = ParseParameters();
        CloseStatement();
        var body = ParseBody(["endmacro"], out _);
        if (Current.Kind == TokenKind.Name) _at++; // {% endmacro name %}
        CloseStatement();
        return new MacroNode(open.Offset, name.Value, parameters, body);
    }

    List<(string, Expr?)> ParseParameters()
    {
        var parameters = new List<(string, Expr?)>();
        ExpectOperator("(");
        while (!AcceptOperator(")"))
        {
            if (parameters.Count > 0) ExpectOperator(",");
            if (AcceptOperator(")")) break;
            var p = Expect(TokenKind.Name, "a parameter name");
            Expr? defaultValue = AcceptOperator("=") ? ParseExpression() : null;
            parameters.Add((p.Value, defaultValue));
        }

        return parameters;
    }

    CallBlockNode ParseCallBlock(TemplateToken open)
    {
        var parameters = Current is { Kind: TokenKind.Operator, Value: "(" } ? ParseParameters() : [];
        var call = ParseExpression() as CallExpr ?? throw Error(open, "'{% call %}' must be followed by a macro call.");
        CloseStatement();
        var body = ParseBody(["endcall"], out _);
        CloseStatement();
        return new CallBlockNode(open.Offset, call, parameters, body);
    }

    FilterBlockNode ParseFilterBlock(TemplateToken open)
    {
        var filtered = ParseFilters(new NameExpr(Current.Offset, "\u0000block"), first: true);
        CloseStatement();
        var body = ParseBody(["endfilter"], out _);
        CloseStatement();
        return new FilterBlockNode(open.Offset, "", [filtered], [], body);
    }

    void CloseStatement() => Expect(TokenKind.StatementClose, "'%}'");

    // ---- Expressions ----------------------------------------------------------------------------------

    Expr ParseExpression()
    {
        var value = ParseTernaryless();
        if (Current is not { Kind: TokenKind.Name, Value: "if" }) return value;
        var at = Next();
        var condition = ParseOr();
        Expr? otherwise = null;
        if (Current is { Kind: TokenKind.Name, Value: "else" })
        {
            _at++;
            otherwise = ParseExpression();
        }

        return new ConditionalExpr(at.Offset, condition, value, otherwise);
    }

    Expr ParseTernaryless() => ParseOr();

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current is { Kind: TokenKind.Name, Value: "or" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, "or", left, ParseAnd());
        }

        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current is { Kind: TokenKind.Name, Value: "and" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, "and", left, ParseNot());
        }

        return left;
    }

    Expr ParseNot()
    {
        if (Current is { Kind: TokenKind.Name, Value: "not" })
        {
            var op = Next();
            return new UnaryExpr(op.Offset, "not", ParseNot());
        }

        return ParseCompare();
    }

    static readonly string[] s_comparisons = ["==", "!=", "<", "<=", ">", ">="];

    // Comparisons chain as in Python: `a < b < c` is `a < b and b < c`.
    Expr ParseCompare()
    {
        var first = ParseAdditive();
        Expr? chain = null;
        var left = first;
        while (true)
        {
            var token = Current;
            string op;
            if (token.Kind == TokenKind.Operator && s_comparisons.Contains(token.Value))
            {
                _at++;
                op = token.Value;
            }
            else if (token is { Kind: TokenKind.Name, Value: "in" })
            {
                _at++;
                op = "in";
            }
            else if (token is { Kind: TokenKind.Name, Value: "not" } && _tokens[_at + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                _at += 2;
                op = "not in";
            }
            else
            {
                return chain ?? first;
            }

            var right = ParseAdditive();
            var comparison = new BinaryExpr(token.Offset, op, left, right);
            chain = chain is null ? comparison : new BinaryExpr(token.Offset, "and", chain, comparison);
            left = right;
        }
    }

    Expr ParseAdditive()
    {
        var left = ParseConcat();
        while (Current is { Kind: TokenKind.Operator, Value: "+" or "-" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, op.Value, left, ParseConcat());
        }

        return left;
    }

    Expr ParseConcat()
    {
        var left = ParseMultiplicative();
        while (Current is { Kind: TokenKind.Operator, Value: "~" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, "~", left, ParseMultiplicative());
        }

        return left;
    }

    Expr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Current is { Kind: TokenKind.Operator, Value: "*" or "/" or "//" or "%" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, op.Value, left, ParsePower());
        }

        return left;
    }

    Expr ParsePower()
    {
        var left = ParseUnary();
        while (Current is { Kind: TokenKind.Operator, Value: "**" })
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, "**", left, ParseUnary());
        }

        return left;
    }

    Expr ParseUnary()
    {
        if (Current is { Kind: TokenKind.Operator, Value: "-" or "+" })
        {
            var op = Next();
            return ParseFilters(new UnaryExpr(op.Offset, op.Value, ParseUnaryNoFilter()));
        }

        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    Expr ParseUnaryNoFilter()
    {
        if (Current is { Kind: TokenKind.Operator, Value: "-" or "+" })
        {
            var op = Next();
            return new UnaryExpr(op.Offset, op.Value, ParseUnaryNoFilter());
        }

        return ParsePostfix(ParsePrimary());
    }

    // `| filter(args)` chains and `is [not] test` after a value.
    Expr ParseFilters(Expr value, bool first = false)
    {
        while (true)
        {
            if (first || Current is { Kind: TokenKind.Operator, Value: "|" })
            {
                if (!first) _at++;
                first = false;
                var name = ParseDottedName();
                var (args, kwargs) = Current is { Kind: TokenKind.Operator, Value: "(" } ? ParseArguments() : ([], []);
                value = new FilterExpr(name.Offset, value, name.Value, args, kwargs);
            }
            else if (Current is { Kind: TokenKind.Name, Value: "is" })
            {
                var at = Next();
                bool negated = false;
                if (Current is { Kind: TokenKind.Name, Value: "not" })
                {
                    _at++;
                    negated = true;
                }

                var name = ParseDottedName();
                var args = new List<Expr>();
                if (Current is { Kind: TokenKind.Operator, Value: "(" })
                {
                    args.AddRange(ParseArguments().Args);
                }
                else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float ||
                    (Current.Kind == TokenKind.Name && Current.Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is")))
                {
                    args.Add(ParsePostfix(ParsePrimary())); // `x is divisibleby 3`, `x is sameas none`
                }

                value = new TestExpr(at.Offset, value, name.Value, args, negated);
            }
            else
            {
                return value;
            }
        }
    }

    TemplateToken ParseDottedName()
    {
        var name = Expect(TokenKind.Name, "a filter or test name");
        // `none`/`true`/`false` are names here; `is none` is a test.
        return name;
    }

    Expr ParsePostfix(Expr target)
    {
        while (true)
        {
            var token = Current;
            if (token is { Kind: TokenKind.Operator, Value: "." })
            {
                _at++;
                var name = Next();
                if (name.Kind is not (TokenKind.Name or TokenKind.Integer))
                    throw Error(name, $"expected an attribute name after '.', got '{name.Value}'.");
                target = new AttributeExpr(token.Offset, target, name.Value);
            }
            else if (token is { Kind: TokenKind.Operator, Value: "[" })
            {
                _at++;
                target = ParseSubscript(token, target);
            }
            else if (token is { Kind: TokenKind.Operator, Value: "(" })
            {
                var (args, kwargs) = ParseArguments();
                target = new CallExpr(token.Offset, target, args, kwargs);
            }
            else
            {
                return target;
            }
        }
    }

    Expr ParseSubscript(TemplateToken open, Expr target)
    {
        Expr? start = null, stop = null, step = null;
        if (!IsOperator(":")) start = ParseExpression();
        if (AcceptOperator("]"))
            return new IndexExpr(open.Offset, target, start ?? throw Error(open, "empty subscript '[]'."));
        ExpectOperator(":");
        if (!IsOperator(":") && !IsOperator("]")) stop = ParseExpression();
        if (AcceptOperator(":") && !IsOperator("]")) step = ParseExpression();
        ExpectOperator("]");
        return new SliceExpr(open.Offset, target, start, stop, step);
    }

    (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        ExpectOperator("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        bool firstArgument = true;
        while (!AcceptOperator(")"))
        {
            if (!firstArgument)
            {
                ExpectOperator(",");
                if (AcceptOperator(")")) break;
            }

            firstArgument = false;
            if (Current.Kind == TokenKind.Name && _tokens[_at + 1] is { Kind: TokenKind.Operator, Value: "=" })
            {
                var name = Next();
                _at++;
                kwargs.Add((name.Value, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Error(Current, "a positional argument follows a keyword argument.");
                args.Add(ParseExpression());
            }
        }

        return (args, kwargs);
    }

    Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.String:
                // Adjacent literals concatenate, as in Python.
                string text = token.Value;
                while (Current.Kind == TokenKind.String) text += Next().Value;
                return new LiteralExpr(token.Offset, text);
            case TokenKind.Integer:
                return new LiteralExpr(token.Offset, long.Parse(token.Value, CultureInfo.InvariantCulture));
            case TokenKind.Float:
                return new LiteralExpr(token.Offset, double.Parse(token.Value, CultureInfo.InvariantCulture));
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(token.Offset, true),
                    "false" or "False" => new LiteralExpr(token.Offset, false),
                    "none" or "None" => new LiteralExpr(token.Offset, null),
                    _ => new NameExpr(token.Offset, token.Value),
                };
            case TokenKind.Operator when token.Value == "(":
                if (AcceptOperator(")")) return new ListExpr(token.Offset, []) { IsTuple = true };
                var inner = ParseExpression();
                if (IsOperator(","))
                {
                    var items = new List<Expr> { inner };
                    while (AcceptOperator(","))
                    {
                        if (IsOperator(")")) break;
                        items.Add(ParseExpression());
                    }

                    inner = new ListExpr(token.Offset, items) { IsTuple = true };
                }

                ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                var list = new List<Expr>();
                while (!AcceptOperator("]"))
                {
                    if (list.Count > 0)
                    {
                        ExpectOperator(",");
                        if (AcceptOperator("]")) break;
                    }

                    list.Add(ParseExpression());
                }

                return new ListExpr(token.Offset, list);
            case TokenKind.Operator when token.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!AcceptOperator("}"))
                {
                    if (pairs.Count > 0)
                    {
                        ExpectOperator(",");
                        if (AcceptOperator("}")) break;
                    }

                    var key = ParseExpression();
                    ExpectOperator(":");
                    pairs.Add((key, ParseExpression()));
                }

                return new DictExpr(token.Offset, pairs);
            default:
                throw Error(token, token.Kind == TokenKind.End ? "unexpected end of template inside an expression."
                    : $"unexpected '{token.Value}' where a value was expected.");
        }
    }

    bool IsOperator(string op) => Current.Kind == TokenKind.Operator && Current.Value == op;

    bool AcceptOperator(string op)
    {
        if (!IsOperator(op)) return false;
        _at++;
        return true;
    }

    void ExpectOperator(string op)
    {
        if (!AcceptOperator(op)) throw Error(Current, $"expected '{op}', got {Describe(Current)}.");
    }

    TemplateToken Expect(TokenKind kind, string what)
    {
        var token = Current;
        if (token.Kind != kind) throw Error(token, $"expected {what}, got {Describe(token)}.");
        _at++;
        return token;
    }

    static string Describe(TemplateToken token) => token.Kind switch
    {
        TokenKind.End => "the end of the template",
        TokenKind.Text => "text",
        TokenKind.String => $"the string '{token.Value}'",
        _ => $"'{token.Value}'",
    };

    TemplateException Error(TemplateToken token, string detail) => TemplateErrors.At(_name, _source, token.Offset, detail);
}
