namespace Cllm.Constraints;

/// <summary>
/// One parse in progress: an immutable stack of frames, the innermost value on top. Sharing tails makes a copy
/// free, so a state is kept, branched and rolled back by keeping a reference.
/// </summary>
sealed class Stack(Frame top, Stack? rest)
{
    public Frame Top { get; } = top;
    public Stack? Rest { get; } = rest;

    /// <summary>The bottom of every parse: the grammar's value is done and nothing may follow.</summary>
    public static Stack End { get; } = new(EndFrame.Instance, null);

    /// <summary>Feeds <paramref name="b"/> to the top frame; every parse that survives is added to <paramref name="output"/>.</summary>
    public void Step(byte b, List<Stack> output) => Top.Step(b, this, output);
}

/// <summary>
/// An immutable position inside one grammar value. A frame that finishes its value pops itself (adds its
/// <see cref="Stack.Rest"/>); a parent that pushes a child first replaces itself by its state after that child, so
/// popping the child is all it takes to continue.
/// </summary>
abstract class Frame
{
    /// <summary>Consumes <paramref name="b"/>; <paramref name="self"/> is the stack this frame tops.</summary>
    public abstract void Step(byte b, Stack self, List<Stack> output);

    /// <summary>Whether the value may end here without another byte (a number's digits, a finished sequence).</summary>
    public virtual bool CanEnd => false;

    /// <summary>Fewest bytes that finish this frame's value (not counting the frames below).</summary>
    public abstract int MinRemaining { get; }

    /// <summary>True for string content at a character boundary: any whole UTF-8 characters other than '"', '\'
    /// and control characters lead back to an equal state, so the token mask accepts a whole subtree of such
    /// tokens without walking it.</summary>
    public virtual bool AbsorbsPlainText => false;
}

sealed class EndFrame : Frame
{
    public static EndFrame Instance { get; } = new();

    public override void Step(byte b, Stack self, List<Stack> output) { }
    public override bool CanEnd => true;
    public override int MinRemaining => 0;
}

/// <summary>
/// The recogniser's state: the parses still alive after the bytes so far (usually one; alternatives such as
/// anyOf or an enum keep several until the text tells them apart). Immutable.
/// </summary>
sealed class ByteState
{
    /// <summary>Parses beyond this are dropped: each remaining one still only leads to valid text.</summary>
    const int MaxParses = 32;

    [ThreadStatic] static List<Stack>? t_scratch;
    readonly Stack[] _parses;
    int _minRemaining = -1;
    sbyte _complete = -1, _canContinue = -1;

    ByteState(Stack[] parses) => _parses = parses;

    public static ByteState Start(Node root)
    {
        var output = new List<Stack>();
        root.Start(Stack.End, output);
        return new ByteState([.. output]);
    }

    /// <summary>The state after <paramref name="b"/>, or null when no parse accepts it.</summary>
    public ByteState? Step(byte b)
    {
        var output = t_scratch ??= new List<Stack>(8);
        output.Clear();
        foreach (var parse in _parses) parse.Step(b, output);
        if (output.Count == 0) return null;
        if (output.Count == 1 && _parses.Length == 1 && ReferenceEquals(output[0], _parses[0])) return this;
        if (output.Count == 1) return new ByteState([output[0]]);
        var distinct = new List<Stack>(output.Count);
        foreach (var s in output)
            if (distinct.Count < MaxParses && !distinct.Exists(d => ReferenceEquals(d, s))) distinct.Add(s);
        return new ByteState([.. distinct]);
    }

    /// <summary>The state after all of <paramref name="bytes"/>, or null.</summary>
    public ByteState? Step(ReadOnlySpan<byte> bytes)
    {
        var state = this;
        foreach (var b in bytes)
        {
            var next = state.Step(b);
            if (next is null) return null;
            state = next;
        }
        return state;
    }

    /// <summary>Whether the text so far is a complete value of the grammar.</summary>
    public bool IsComplete
    {
        get
        {
            if (_complete < 0) _complete = (sbyte)(_parses.Any(Completes) ? 1 : 0);
            return _complete == 1;
        }
    }

    /// <summary>Whether some byte may still follow.</summary>
    public bool CanContinue
    {
        get
        {
            if (_canContinue < 0)
            {
                _canContinue = 0;
                for (var b = 0; b < 256 && _canContinue == 0; b++)
                    if (Step((byte)b) is not null) _canContinue = 1;
            }
            return _canContinue == 1;
        }
    }

    /// <summary>Fewest bytes that complete the value: a completion of that length exists, none shorter.</summary>
    public int MinRemaining
    {
        get
        {
            if (_minRemaining < 0)
            {
                var min = int.MaxValue;
                foreach (var parse in _parses)
                {
                    long sum = 0;
                    for (var s = parse; s is not null; s = s.Rest) sum += s.Top.MinRemaining;
                    min = (int)Math.Min(min, Math.Min(sum, int.MaxValue));
                }
                _minRemaining = min;
            }
            return _minRemaining;
        }
    }

    public bool AbsorbsPlainText => _parses.Length == 1 && _parses[0].Top.AbsorbsPlainText;

    /// <summary>The last token mask computed from this state (see ConstraintCursor); replaced whole, so sharing a
    /// state across threads is safe.</summary>
    internal CachedMask? Mask { get; set; }

    static bool Completes(Stack parse)
    {
        for (var s = parse; s is not null; s = s.Rest)
            if (!s.Top.CanEnd) return false;
        return true;
    }
}
