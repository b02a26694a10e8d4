namespace Cllm.Constraints;

/// <summary>
/// A JSON string: UTF-8 checked byte by byte (a token may end inside a character), escapes checked, raw control
/// characters refused. \u escapes of D800-DFFF are refused too: a lone surrogate is not valid text (characters
/// beyond U+FFFF are written as raw UTF-8 instead).
/// </summary>
sealed class StringNode : Node
{
    public static StringNode Instance { get; } = new();

    // Content, escape, \u digits still to come (index 1..4), and UTF-8 continuations: (bytes left, first byte range).
    static readonly StringFrame Open = new(Phase.Open), Content = new(Phase.Content), Escape = new(Phase.Escape);
    static readonly StringFrame[] Hex = [.. Enumerable.Range(0, 5).Select(k => new StringFrame(Phase.Hex, k))];
    static readonly StringFrame Tail1 = new(Phase.Utf8, 1), Tail2 = new(Phase.Utf8, 2), Tail3 = new(Phase.Utf8, 3),
        E0 = new(Phase.Utf8, 2, 0xA0, 0xBF), Ed = new(Phase.Utf8, 2, 0x80, 0x9F),
        F0 = new(Phase.Utf8, 3, 0x90, 0xBF), F4 = new(Phase.Utf8, 3, 0x80, 0x8F);

    /// <summary>The frame inside a string just after its opening quote (object keys start there).</summary>
    public static Frame AfterQuote => Content;

    protected override Frame Initial => Open;
    protected override int ComputeMinLength() => 2;

    enum Phase { Open, Content, Escape, Hex, Utf8 }

    sealed class StringFrame(Phase phase, int left = 0, byte low = 0x80, byte high = 0xBF) : Frame
    {
        public override bool AbsorbsPlainText => phase == Phase.Content;

        public override int MinRemaining => phase switch
        {
            Phase.Open => 2,
            Phase.Content => 1,
            Phase.Escape => 2,
            _ => left + 1,
        };

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            var next = Next(b);
            if (next == Content && phase == Phase.Content) output.Add(self);
            else if (next is not null) output.Add(new Stack(next, self.Rest));
            else if (phase == Phase.Content && b == (byte)'"') output.Add(self.Rest!);
        }

        /// <summary>The frame after <paramref name="b"/>; null for the closing quote or a refused byte.</summary>
        StringFrame? Next(byte b)
        {
            switch (phase)
            {
                case Phase.Open:
                    return b == (byte)'"' ? Content : null;
                case Phase.Content:
                    if (b == (byte)'"' || b < 0x20) return null;
                    if (b == (byte)'\\') return Escape;
                    return b switch
                    {
                        < 0x80 => Content,
                        >= 0xC2 and <= 0xDF => Tail1,
                        0xE0 => E0,
                        0xED => Ed,
                        >= 0xE1 and <= 0xEF => Tail2,
                        0xF0 => F0,
                        >= 0xF1 and <= 0xF3 => Tail3,
                        0xF4 => F4,
                        _ => null,
                    };
                case Phase.Escape:
                    if (b == (byte)'u') return Hex[4];
                    return b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t'
                        ? Content : null;
                case Phase.Hex:
                    if (!IsHex(b) || (left == 4 && b is (byte)'d' or (byte)'D')) return null;
                    return left == 1 ? Content : Hex[left - 1];
                default:
                    if (b < low || b > high) return null;
                    return left switch { 1 => Content, 2 => Tail1, _ => Tail2 };
            }
        }

        static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';
    }
}

/// <summary>
/// A JSON number, or an integer (no fraction or exponent). At most 15 digits before and after the point and 3
/// in the exponent, so a number cannot run on.
/// </summary>
sealed class NumberNode : Node
{
    const int MaxDigits = 15, MaxExponentDigits = 3;

    public static NumberNode Number { get; } = new(integer: false);
    public static NumberNode Integer { get; } = new(integer: true);

    readonly bool _integer;
    readonly Frame _initial;

    NumberNode(bool integer)
    {
        _integer = integer;
        _initial = new NumberFrame(this, Phase.Start, 0);
    }

    protected override Frame Initial => _initial;
    protected override int ComputeMinLength() => 1;

    enum Phase { Start, Minus, Zero, Int, Dot, Fraction, E, ExponentSign, Exponent }

    sealed class NumberFrame(NumberNode node, Phase phase, int digits) : Frame
    {
        public override bool CanEnd => phase is Phase.Zero or Phase.Int or Phase.Fraction or Phase.Exponent;
        public override int MinRemaining => CanEnd ? 0 : 1;

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            var next = Next(b);
            if (next is not null) output.Add(new Stack(next, self.Rest));
            // A number has no closing byte: where it may end, the byte may belong to what follows.
            if (CanEnd) self.Rest!.Step(b, output);
        }

        NumberFrame? Next(byte b)
        {
            var digit = b is >= (byte)'0' and <= (byte)'9';
            var point = !node._integer && b == (byte)'.';
            var e = !node._integer && b is (byte)'e' or (byte)'E';
            return phase switch
            {
                Phase.Start when b == (byte)'-' => New(Phase.Minus, 0),
                Phase.Start or Phase.Minus when b == (byte)'0' => New(Phase.Zero, 1),
                Phase.Start or Phase.Minus when digit => New(Phase.Int, 1),
                Phase.Zero or Phase.Int when point => New(Phase.Dot, 0),
                Phase.Zero or Phase.Int or Phase.Fraction when e => New(Phase.E, 0),
                Phase.Int when digit && digits < MaxDigits => New(Phase.Int, digits + 1),
                Phase.Dot when digit => New(Phase.Fraction, 1),
                Phase.Fraction when digit && digits < MaxDigits => New(Phase.Fraction, digits + 1),
                Phase.E when b is (byte)'+' or (byte)'-' => New(Phase.ExponentSign, 0),
                Phase.E or Phase.ExponentSign when digit => New(Phase.Exponent, 1),
                Phase.Exponent when digit && digits < MaxExponentDigits => New(Phase.Exponent, digits + 1),
                _ => null,
            };
        }

        NumberFrame New(Phase p, int d) => new(node, p, d);
    }
}

/// <summary>A property of an object schema: its key as JSON text (quotes included) and its value.</summary>
sealed record PropertyRule(string Name, byte[] Key, Node Value, bool Required);

/// <summary>
/// A JSON object. With properties: only those, in the schema's order, each optional one free to be left out,
/// every required one present. Without: any string keys, values of <paramref name="extra"/>.
/// </summary>
sealed class ObjectNode : Node
{
    readonly PropertyRule[] _properties;
    readonly Node? _extra;
    readonly JsonWhitespace _whitespace;
    readonly int[] _firstRequired; // per start index: the first required property at or after it, or Length
    readonly Frame _initial;
    int[]? _tail;

    public ObjectNode(IReadOnlyList<PropertyRule>? properties, Node? extra, JsonWhitespace whitespace)
    {
        if ((properties is null) == (extra is null))
            throw new ArgumentException("An object has either declared properties or free keys with an extra value rule.");
        _properties = [.. properties ?? []];
        _extra = extra;
        _whitespace = whitespace;
        _firstRequired = new int[_properties.Length + 1];
        _firstRequired[_properties.Length] = _properties.Length;
        for (var i = _properties.Length - 1; i >= 0; i--) _firstRequired[i] = _properties[i].Required ? i : _firstRequired[i + 1];
        _initial = new ObjectFrame(this, Phase.Open, 0, 0, null, 0, null);
    }

    bool Free => _extra is not null;
    protected override Frame Initial => _initial;
    protected override int ComputeMinLength() => Free ? 2 : 1 + AfterOpenCost(0);

    /// <summary>Tail(j): bytes that close the object after property j-1, the required ones from j on included
    /// (each after a comma).</summary>
    int Tail(int next)
    {
        if (_tail is null)
        {
            var tail = new int[_properties.Length + 1];
            tail[_properties.Length] = 1;
            for (var i = _properties.Length - 1; i >= 0; i--)
            {
                var p = _properties[i];
                tail[i] = Math.Min(tail[i + 1] + (p.Required ? 1 + KeyValueCost(i) : 0), Unreachable);
            }
            _tail = tail;
        }
        return _tail[next];
    }

    int KeyValueCost(int i) => Math.Min(_properties[i].Key.Length + 1 + _properties[i].Value.MinLength, Unreachable);

    /// <summary>After '{' with properties from <paramref name="next"/> on still to come.</summary>
    int AfterOpenCost(int next) => _firstRequired[next] == _properties.Length ? 1 : Tail(next) - 1;

    /// <summary>Bytes to finish once a key must be written: the cheapest candidate's key, value and the rest.</summary>
    int KeyCost(int next, int[]? alive, int position)
    {
        if (Free) return 2 + 1 + _extra!.MinLength + 1;
        var min = Unreachable;
        foreach (var i in alive ?? Candidates(next))
            min = Math.Min(min, _properties[i].Key.Length - position + 1 + _properties[i].Value.MinLength + Tail(i + 1));
        return min;
    }

    /// <summary>The properties that may come next: from <paramref name="next"/> up to the first required one.</summary>
    int[] Candidates(int next)
    {
        var last = Math.Min(_firstRequired[next], _properties.Length - 1);
        return last < next ? [] : [.. Enumerable.Range(next, last - next + 1)];
    }

    bool MayClose(int next) => Free || _firstRequired[next] == _properties.Length;

    enum Phase { Open, AfterOpen, Key, AfterKey, AfterColon, AfterValue, AfterComma }

    /// <summary><paramref name="next"/>: the first property that may still come; <paramref name="alive"/> and
    /// <paramref name="position"/>: the keys that match what was written of a key so far; <paramref name="value"/>:
    /// the value rule after the key just read.</summary>
    sealed class ObjectFrame(ObjectNode node, Phase phase, int next, int spaces, int[]? alive, int position, Node? value) : Frame
    {
        public override int MinRemaining => phase switch
        {
            Phase.Open => node.MinLength,
            Phase.AfterOpen => node.Free ? 1 : node.AfterOpenCost(next),
            Phase.Key => node.KeyCost(next, alive, position),
            Phase.AfterKey => Math.Min(1 + value!.MinLength + (node.Free ? 1 : node.Tail(next)), Unreachable),
            Phase.AfterColon => Math.Min(value!.MinLength + (node.Free ? 1 : node.Tail(next)), Unreachable),
            Phase.AfterValue => node.Free ? 1 : node.Tail(next),
            _ => node.KeyCost(next, null, 0),
        };

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            var rest = self.Rest;
            switch (phase)
            {
                case Phase.Open:
                    if (b == (byte)'{') Push(Phase.AfterOpen, next, 0);
                    return;
                case Phase.AfterOpen or Phase.AfterComma:
                    if (Space(phase == Phase.AfterOpen ? Gap.AfterOpen : Gap.AfterComma, b)) return;
                    if (phase == Phase.AfterOpen && b == (byte)'}' && node.MayClose(next)) { output.Add(rest!); return; }
                    if (b != (byte)'"') return;
                    if (node.Free)
                    {
                        var parent = new Stack(new ObjectFrame(node, Phase.AfterKey, 0, 0, null, 0, node._extra), rest);
                        output.Add(new Stack(StringNode.AfterQuote, parent));
                    }
                    else
                    {
                        var candidates = node.Candidates(next);
                        if (candidates.Length > 0) output.Add(new Stack(new ObjectFrame(node, Phase.Key, next, 0, candidates, 1, null), rest));
                    }
                    return;
                case Phase.Key:
                    var matching = alive!.Where(i => node._properties[i].Key[position] == b).ToArray();
                    foreach (var i in matching)
                        if (node._properties[i].Key.Length == position + 1)
                        {
                            Push(Phase.AfterKey, i + 1, 0, node._properties[i].Value);
                            return; // keys end with their closing quote, so no other key continues
                        }
                    if (matching.Length > 0) output.Add(new Stack(new ObjectFrame(node, Phase.Key, next, 0, matching, position + 1, null), rest));
                    return;
                case Phase.AfterKey:
                    if (Space(Gap.BeforeColon, b)) return;
                    if (b == (byte)':') Push(Phase.AfterColon, next, 0, value);
                    return;
                case Phase.AfterColon:
                    if (Space(Gap.AfterColon, b)) return;
                    value!.Enter(new Stack(new ObjectFrame(node, Phase.AfterValue, next, 0, null, 0, null), rest), b, output);
                    return;
                default: // AfterValue
                    if (Space(Gap.AfterValue, b)) return;
                    if (b == (byte)'}' && node.MayClose(next)) output.Add(rest!);
                    else if (b == (byte)',' && (node.Free || next < node._properties.Length)) Push(Phase.AfterComma, next, 0);
                    return;
            }

            bool Space(Gap gap, byte c)
            {
                if (!node._whitespace.Allows(gap, spaces, c)) return false;
                Push(phase, next, spaces + 1, value);
                return true;
            }

            void Push(Phase p, int n, int s, Node? v = null) =>
                output.Add(new Stack(new ObjectFrame(node, p, n, s, null, 0, v), rest));
        }
    }
}

/// <summary>A JSON array of <paramref name="items"/>, with optional item count bounds.</summary>
sealed class ArrayNode : Node
{
    readonly Node _items;
    readonly int _minItems, _maxItems;
    readonly JsonWhitespace _whitespace;
    readonly Frame _initial;

    public ArrayNode(Node items, int minItems, int maxItems, JsonWhitespace whitespace)
    {
        (_items, _minItems, _maxItems, _whitespace) = (items, minItems, maxItems, whitespace);
        _initial = new ArrayFrame(this, Phase.Open, 0, 0);
    }

    protected override Frame Initial => _initial;
    protected override int ComputeMinLength() => 1 + AfterOpenCost();

    int AfterOpenCost() => _minItems == 0 ? 1 : AfterValueCost(0) - 1; // the first item has no comma
    int AfterValueCost(int count) => (int)Math.Min(1 + (long)Math.Max(0, _minItems - count) * (1 + _items.MinLength), Unreachable);

    enum Phase { Open, AfterOpen, AfterValue, AfterComma }

    sealed class ArrayFrame(ArrayNode node, Phase phase, int count, int spaces) : Frame
    {
        public override int MinRemaining => phase switch
        {
            Phase.Open => node.MinLength,
            Phase.AfterOpen => node.AfterOpenCost(),
            Phase.AfterValue => node.AfterValueCost(count),
            _ => Math.Min(node._items.MinLength + node.AfterValueCost(count + 1), Unreachable),
        };

        public override void Step(byte b, Stack self, List<Stack> output)
        {
            var rest = self.Rest;
            var gap = phase switch { Phase.AfterOpen => Gap.AfterOpen, Phase.AfterValue => Gap.AfterValue, _ => Gap.AfterComma };
            if (phase != Phase.Open && node._whitespace.Allows(gap, spaces, b))
            {
                output.Add(new Stack(new ArrayFrame(node, phase, count, spaces + 1), rest));
                return;
            }
            switch (phase)
            {
                case Phase.Open:
                    if (b == (byte)'[') output.Add(new Stack(new ArrayFrame(node, Phase.AfterOpen, 0, 0), rest));
                    return;
                case Phase.AfterOpen or Phase.AfterComma:
                    if (phase == Phase.AfterOpen && b == (byte)']' && node._minItems == 0) output.Add(rest!);
                    if (phase == Phase.AfterOpen && node._maxItems == 0) return;
                    node._items.Enter(new Stack(new ArrayFrame(node, Phase.AfterValue, count + 1, 0), rest), b, output);
                    return;
                default:
                    if (b == (byte)']' && count >= node._minItems) output.Add(rest!);
                    else if (b == (byte)',' && count < node._maxItems) output.Add(new Stack(new ArrayFrame(node, Phase.AfterComma, count, 0), rest));
                    return;
            }
        }
    }
}
