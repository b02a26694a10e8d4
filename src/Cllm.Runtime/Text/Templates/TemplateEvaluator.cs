using System.Text;

namespace Cllm.Text.Templates;

/// <summary>Walks the tree and writes the output; errors name the template and the line and column.</summary>
internal sealed class TemplateEvaluator
{
    enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    readonly string _source;
    readonly string _name;

    public TemplateEvaluator(string source, string name)
    {
        _source = source;
        _name = name;
    }

    public string Name => _name;

    public string Render(IReadOnlyList<Node> nodes, TemplateScope scope)
    {
        var sb = new StringBuilder();
        Execute(nodes, scope, sb);
        return sb.ToString();
    }

    Flow Execute(IReadOnlyList<Node> nodes, TemplateScope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            var flow = Execute(node, scope, output);
            if (flow != Flow.Normal) return flow;
        }

        return Flow.Normal;
    }

    Flow Execute(Node node, TemplateScope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputNode o:
                output.Append(TemplateValues.ToText(Evaluate(o.Value, scope)));
                return Flow.Normal;
            case IfNode ifNode:
                foreach (var (condition, body) in ifNode.Branches)
                {
                    if (TemplateValues.IsTruthy(Evaluate(condition, scope))) return Execute(body, scope, output);
                }

                return ifNode.Else is null ? Flow.Normal : Execute(ifNode.Else, scope, output);
            case ForNode forNode:
                ExecuteFor(forNode, scope, output);
                return Flow.Normal;
            case SetNode set:
                ExecuteSet(set, scope);
                return Flow.Normal;
            case MacroNode macro:
                scope.Set(macro.Name, MakeMacro(macro.Name, macro.Parameters, macro.Body, scope));
                return Flow.Normal;
            case CallBlockNode call:
                // The macro sees the block as caller(), passed the way jinja2 passes it: as a keyword argument.
                var caller = MakeMacro("caller", call.Parameters, call.Body, scope);
                var withCaller = call.Call with { Kwargs = [.. call.Call.Kwargs, ("caller", new LiteralExpr(call.Offset, caller))] };
                output.Append(TemplateValues.ToText(Evaluate(withCaller, scope)));
                return Flow.Normal;
            case FilterBlockNode filter:
                var inner = new StringBuilder();
                var flow = Execute(filter.Body, scope, inner);
                var blockScope = new TemplateScope(scope);
                blockScope.Set("\u0000block", inner.ToString());
                output.Append(TemplateValues.ToText(Evaluate(filter.Args[0], blockScope)));
                return flow;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw Error(node.Offset, $"cannot run a {node.GetType().Name}.");
        }
    }

    void ExecuteSet(SetNode set, TemplateScope scope)
    {
        object? value;
        if (set.Body is not null)
        {
            var sb = new StringBuilder();
            Execute(set.Body, scope, sb);
            value = sb.ToString();
        }
        else
        {
            value = Evaluate(set.Value!, scope);
        }

        if (set.Namespace is not null)
        {
            var target = Evaluate(set.Namespace, scope);
            if (target is TemplateNamespace ns) ns.Values[set.Names[0]] = value;
            else if (target is OrderedDictionary<string, object?> d) d[set.Names[0]] = value;
            else throw Error(set.Offset, $"cannot set attribute '{set.Names[0]}' on a {TemplateValues.TypeName(target)}; use namespace().");
            return;
        }

        if (set.Names.Count == 1)
        {
            scope.Set(set.Names[0], value);
            return;
        }

        var items = Iterate(value, set.Offset);
        if (items.Count != set.Names.Count)
            throw Error(set.Offset, $"cannot unpack {items.Count} values into {set.Names.Count} names.");
        for (int i = 0; i < items.Count; i++) scope.Set(set.Names[i], items[i]);
    }

    void ExecuteFor(ForNode node, TemplateScope scope, StringBuilder output)
    {
        var source = Iterate(Evaluate(node.Iterable, scope), node.Iterable.Offset);
        var items = new List<object?>();
        foreach (var item in source)
        {
            if (node.Filter is null) items.Add(item);
            else
            {
                var filterScope = new TemplateScope(scope);
                Bind(node, filterScope, item);
                if (TemplateValues.IsTruthy(Evaluate(node.Filter, filterScope))) items.Add(item);
            }
        }

        if (items.Count == 0)
        {
            if (node.Else is not null) Execute(node.Else, scope, output);
            return;
        }

        for (int i = 0; i < items.Count; i++)
        {
            var loop = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
            {
                ["index"] = (long)(i + 1),
                ["index0"] = (long)i,
                ["revindex"] = (long)(items.Count - i),
                ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0,
                ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                ["nextitem"] = i < items.Count - 1 ? items[i + 1] : Undefined.Instance,
                ["depth"] = 1L,
                ["depth0"] = 0L,
            };
            int index = i;
            loop["cycle"] = new TemplateFunction("loop.cycle", (args, _) => args.Count == 0 ? Undefined.Instance : args[index % args.Count]);
            var iteration = new TemplateScope(scope);
            iteration.Set("loop", loop);
            Bind(node, iteration, items[i]);
            if (Execute(node.Body, iteration, output) == Flow.Break) break;
        }
    }

    void Bind(ForNode node, TemplateScope scope, object? item)
    {
        if (node.Targets.Count == 1)
        {
            scope.Set(node.Targets[0], item);
            return;
        }

        var parts = Iterate(item, node.Offset);
        if (parts.Count != node.Targets.Count)
            throw Error(node.Offset, $"cannot unpack {parts.Count} values into {node.Targets.Count} loop variables.");
        for (int i = 0; i < parts.Count; i++) scope.Set(node.Targets[i], parts[i]);
    }

    public List<object?> Iterate(object? value, int offset) => value switch
    {
        List<object?> list => list,
        OrderedDictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        TemplateNamespace ns => ns.Values.Keys.Cast<object?>().ToList(),
        string s => StringElements(s),
        Undefined => [],
        _ => throw Error(offset, $"a {TemplateValues.TypeName(value)} ({TemplateValues.ToText(value)}) cannot be iterated."),
    };

    static List<object?> StringElements(string s)
    {
        var result = new List<object?>();
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
            result.Add(s.Substring(i, char.IsSurrogatePair(s, i) ? 2 : 1));
        return result;
    }

    TemplateFunction MakeMacro(string name, IReadOnlyList<(string Name, Expr? Default)> parameters, IReadOnlyList<Node> body,
        TemplateScope closure)
    {
        return new TemplateFunction(name, (args, kwargs) =>
        {
            var scope = new TemplateScope(closure);
            var extraKwargs = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (k, v) in kwargs)
            {
                if (k == "caller") scope.Set("caller", v);
                else if (!parameters.Any(p => p.Name == k)) extraKwargs[k] = v;
            }

            for (int i = 0; i < parameters.Count; i++)
            {
                var (pname, pdefault) = parameters[i];
                object? value = i < args.Count ? args[i]
                    : kwargs.TryGetValue(pname, out var kv) ? kv
                    : pdefault is not null ? Evaluate(pdefault, scope)
                    : Undefined.Instance;
                scope.Set(pname, value);
            }

            scope.Set("varargs", args.Skip(parameters.Count).ToList());
            scope.Set("kwargs", extraKwargs);
            var sb = new StringBuilder();
            Execute(body, scope, sb);
            return sb.ToString();
        });
    }

    // ---- Expressions ----------------------------------------------------------------------------------

    public object? Evaluate(Expr expr, TemplateScope scope)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return scope.Lookup(name.Name);
            case ListExpr list:
                var items = list.Items.Select(i => Evaluate(i, scope));
                return list.IsTuple ? new TemplateTuple(items) : items.ToList();
            case DictExpr dict:
                var d = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in dict.Items) d[TemplateValues.ToText(Evaluate(k, scope))] = Evaluate(v, scope);
                return d;
            case AttributeExpr attribute:
                return TemplateBuiltins.GetAttribute(Evaluate(attribute.Target, scope), attribute.Name);
            case IndexExpr index:
                return GetItem(Evaluate(index.Target, scope), Evaluate(index.Index, scope), index.Offset);
            case SliceExpr slice:
                return Slice(slice, scope);
            case CallExpr call:
                return Call(call, scope);
            case FilterExpr filter:
                return TemplateBuiltins.Filter(this, filter.Name, Evaluate(filter.Value, scope),
                    filter.Args.Select(a => Evaluate(a, scope)).ToList(), Kwargs(filter.Kwargs, scope), filter.Offset);
            case TestExpr test:
                bool result = TemplateBuiltins.Test(this, test.Name, Evaluate(test.Value, scope),
                    test.Args.Select(a => Evaluate(a, scope)).ToList(), test.Offset);
                return test.Negated ? !result : result;
            case UnaryExpr unary:
                var operand = Evaluate(unary.Operand, scope);
                return unary.Operator switch
                {
                    "not" => !TemplateValues.IsTruthy(operand),
                    "-" => operand switch
                    {
                        long l => (object)(-l),
                        double dd => -dd,
                        bool b => b ? -1L : 0L,
                        _ => throw Error(unary.Offset, $"cannot negate a {TemplateValues.TypeName(operand)}."),
                    },
                    _ => operand,
                };
            case BinaryExpr binary:
                return Binary(binary, scope);
            case ConditionalExpr conditional:
                return TemplateValues.IsTruthy(Evaluate(conditional.Condition, scope))
                    ? Evaluate(conditional.Then, scope)
                    : conditional.Else is null ? Undefined.Instance : Evaluate(conditional.Else, scope);
            default:
                throw Error(expr.Offset, $"cannot evaluate a {expr.GetType().Name}.");
        }
    }

    Dictionary<string, object?> Kwargs(IReadOnlyList<(string Name, Expr Value)> kwargs, TemplateScope scope)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs) result[name] = Evaluate(value, scope);
        return result;
    }

    object? Call(CallExpr call, TemplateScope scope)
    {
        var callee = Evaluate(call.Callee, scope);
        var args = call.Args.Select(a => Evaluate(a, scope)).ToList();
        var kwargs = Kwargs(call.Kwargs, scope);
        if (callee is not TemplateFunction function)
        {
            string what = call.Callee switch
            {
                NameExpr n => $"'{n.Name}'",
                AttributeExpr a => $"'.{a.Name}'",
                _ => "this value",
            };
            throw Error(call.Offset, callee is Undefined && call.Callee is AttributeExpr { Name: "append" or "extend" or "pop" or "insert"
                    or "remove" or "clear" or "update" or "setdefault" }
                ? $"{what} would change a list or dict, which transformers' sandbox forbids; use namespace() and 'set' instead."
                : callee is Undefined
                ? $"{what} is undefined, so it cannot be called."
                : $"{what} is a {TemplateValues.TypeName(callee)}, not something that can be called.");
        }

        try
        {
            return function.Invoke(args, kwargs);
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            throw Error(call.Offset, e.Detail, e); // raise_exception: give it the position of the call
        }
        catch (TemplateException)
        {
            throw;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or InvalidCastException
            or IndexOutOfRangeException or OverflowException)
        {
            throw Error(call.Offset, $"{function.Name}(...) failed: {e.Message}", e);
        }
    }

    object? GetItem(object? target, object? key, int offset)
    {
        switch (target)
        {
            case OrderedDictionary<string, object?> d:
                return key is not null and not Undefined && d.TryGetValue(TemplateValues.ToText(key), out var v) ? v : Undefined.Instance;
            case TemplateNamespace ns:
                return ns.Values.TryGetValue(TemplateValues.ToText(key), out var nv) ? nv : Undefined.Instance;
            case List<object?> list when key is long or bool:
                long i = key is bool b ? (b ? 1 : 0) : (long)key;
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : Undefined.Instance;
            case string s when key is long index:
                var chars = StringElements(s);
                if (index < 0) index += chars.Count;
                return index >= 0 && index < chars.Count ? chars[(int)index] : Undefined.Instance;
            case string when key is string name:
                return TemplateBuiltins.GetAttribute(target, name);
            case List<object?> when key is string name:
                return TemplateBuiltins.GetAttribute(target, name);
            case Undefined or null:
                return Undefined.Instance;
            default:
                throw Error(offset, $"a {TemplateValues.TypeName(target)} cannot be indexed with a {TemplateValues.TypeName(key)}.");
        }
    }

    object? Slice(SliceExpr slice, TemplateScope scope)
    {
        var target = Evaluate(slice.Target, scope);
        long? Bound(Expr? e)
        {
            if (e is null) return null;
            var v = Evaluate(e, scope);
            return v switch
            {
                null or Undefined => null,
                long l => l,
                _ => throw Error(e.Offset, $"slice bounds must be integers, got a {TemplateValues.TypeName(v)}."),
            };
        }

        long? start = Bound(slice.Start), stop = Bound(slice.Stop), step = Bound(slice.Step);
        List<object?> items = target switch
        {
            List<object?> list => list,
            string s => StringElements(s),
            Undefined => [],
            _ => throw Error(slice.Offset, $"a {TemplateValues.TypeName(target)} cannot be sliced."),
        };
        var picked = TemplateBuiltins.SliceIndices(items.Count, start, stop, step ?? 1, slice.Offset, this).Select(i => items[i]).ToList();
        return target is string ? string.Concat(picked.Cast<string>()) : picked;
    }

    object? Binary(BinaryExpr binary, TemplateScope scope)
    {
        if (binary.Operator == "and")
        {
            var left = Evaluate(binary.Left, scope);
            return TemplateValues.IsTruthy(left) ? Evaluate(binary.Right, scope) : left;
        }

        if (binary.Operator == "or")
        {
            var left = Evaluate(binary.Left, scope);
            return TemplateValues.IsTruthy(left) ? left : Evaluate(binary.Right, scope);
        }

        var a = Evaluate(binary.Left, scope);
        var b = Evaluate(binary.Right, scope);
        return TemplateBuiltins.Operate(this, binary.Operator, a, b, binary.Offset);
    }

    public TemplateException Error(int offset, string detail, Exception? inner = null) =>
        TemplateErrors.At(_name, _source, offset, detail, inner);
}
