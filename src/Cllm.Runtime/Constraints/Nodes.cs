namespace Cllm.Constraints;

/// <summary>A compiled grammar value: starts the frames that recognise it.</summary>
abstract class Node
{
    /// <summary>Stands for "cannot finish" in length sums, small enough that sums do not overflow.</summary>
    internal const int Unreachable = int.MaxValue / 64;

    [ThreadStatic] static HashSet<Node>? t_cycles;
    int _minLength = -1;
    bool _measuring;

    /// <summary>Adds the parses that begin this value on top of <paramref name="rest"/>.</summary>
    public virtual void Start(Stack rest, List<Stack> output) => output.Add(new Stack(Initial, rest));

    /// <summary>Begins this value on top of <paramref name="rest"/> and feeds it its first byte.</summary>
    public virtual void Enter(Stack rest, byte b, List<Stack> output)
    {
        var s = new Stack(Initial, rest);
        s.Top.Step(b, s, output);
    }

    protected abstract Frame Initial { get; }

    /// <summary>Length in bytes of the shortest text of this value.</summary>
    public int MinLength
    {
        get
        {
            if (_minLength >= 0) return _minLength;
            var cycles = t_cycles ??= [];
            if (_measuring)
            {
                // A recursive definition: a shortest text never holds this value inside itself.
                cycles.Add(this);
                return Unreachable;
            }
            _measuring = true;
            var length = Math.Min(ComputeMinLength(), Unreachable);
            _measuring = false;
            cycles.Remove(this);
            // A value measured while an enclosing one was cut short may be too long: measure it again later.
            if (cycles.Count == 0) _minLength = length;
            return length;
        }
    }

    protected abstract int ComputeMinLength();
}

/// <summary>One of several fixed texts (a literal, an enum, a const).</summary>
sealed class LiteralNode : Node
{
    readonly byte[][] _options;
    readonly Frame _initial;

    public LiteralNode(IEnumerable<byte[]> options)
    {
        _options = options.Distinct(ByteArrayComparer.Instance).ToArray();
        if (_options.Length == 0 || _options.Any(o => o.Length == 0))
            throw new ArgumentException("A literal needs at least one non-empty text.", nameof(options));
        _initial = new LiteralFrame(this, [.. Enumerable.Range(0, _options.Length)], 0);
    }

    protected override Frame Initial => _initial;
    protected override int ComputeMinLength() => _options.Min(o => o.Length);

    sealed class LiteralFrame(LiteralNode node, int[] alive, int position) : Frame
    {
        public override int MinRemaining => alive.Min(i => node._options[i].Length) - position;

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            var finished = false;
            List<int>? next = null;
            foreach (var i in alive)
            {
                var option = node._options[i];
                if (option[position] != b) continue;
                if (option.Length == position + 1) finished = true;
                else (next ??= []).Add(i);
            }
            if (finished) output.Add(self.Rest!);
            if (next is not null) output.Add(new Stack(new LiteralFrame(node, [.. next], position + 1), self.Rest));
        }
    }
}

/// <summary>Parts one after another (literal text around JSON values).</summary>
sealed class SequenceNode : Node
{
    readonly Node[] _parts;
    readonly Frame[] _frames;

    public SequenceNode(IEnumerable<Node> parts)
    {
        _parts = [.. parts];
        if (_parts.Length == 0) throw new ArgumentException("A sequence needs at least one part.", nameof(parts));
        _frames = [.. Enumerable.Range(0, _parts.Length + 1).Select(k => new SequenceFrame(this, k))];
    }

    protected override Frame Initial => _frames[0];
    protected override int ComputeMinLength() => _parts.Sum(p => p.MinLength);

    sealed class SequenceFrame(SequenceNode node, int next) : Frame
    {
        public override bool CanEnd => next == node._parts.Length;

        public override int MinRemaining
        {
            get
            {
                var sum = 0;
                for (var k = next; k < node._parts.Length; k++) sum = Math.Min(sum + node._parts[k].MinLength, Unreachable);
                return sum;
            }
        }

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            if (next == node._parts.Length) self.Rest!.Step(b, output); // done: the byte belongs to what follows
            else node._parts[next].Enter(new Stack(node._frames[next + 1], self.Rest), b, output);
        }
    }
}

/// <summary>Any one of several values (anyOf, oneOf, a type list, a choice of tools).</summary>
sealed class ChoiceNode(IReadOnlyList<Node> options) : Node
{
    public override void Start(Stack rest, List<Stack> output)
    {
        foreach (var option in options) option.Start(rest, output);
    }

    public override void Enter(Stack rest, byte b, List<Stack> output)
    {
        foreach (var option in options) option.Enter(rest, b, output);
    }

    protected override Frame Initial => throw new InvalidOperationException("A choice has no frame of its own.");
    protected override int ComputeMinLength() => options.Count == 0 ? Unreachable : options.Min(o => o.MinLength);
}

/// <summary>A value defined elsewhere (a schema's $ref), resolved on first use so definitions may recurse.</summary>
sealed class ReferenceNode(Func<Node> resolve) : Node
{
    Node? _target;
    Node Target => _target ??= resolve();

    public override void Start(Stack rest, List<Stack> output) => Target.Start(rest, output);
    public override void Enter(Stack rest, byte b, List<Stack> output) => Target.Enter(rest, b, output);
    protected override Frame Initial => throw new InvalidOperationException("A reference has no frame of its own.");
    protected override int ComputeMinLength() => Target.MinLength;
}

sealed class ByteArrayComparer : IEqualityComparer<byte[]>
{
    public static ByteArrayComparer Instance { get; } = new();
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] obj)
    {
        var hash = new HashCode();
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}
