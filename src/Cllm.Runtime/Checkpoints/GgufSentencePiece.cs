using System.Buffers.Binary;
using System.Text;

namespace Cllm.Checkpoints;

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (a <c>ModelProto</c> protobuf) a GGUF vocabulary needs:
/// the pieces with their scores and types, the trainer's model type and special ids, and the normalizer's
/// whitespace settings. Read with a minimal protobuf decoder (the format is small and stable).
/// </summary>
internal sealed record GgufSentencePiece(
    IReadOnlyList<(string Piece, float Score, int Type)> Pieces,
    int ModelType,
    int UnknownId,
    int BosId,
    int EosId,
    int PadId,
    bool ByteFallback,
    string NormalizerName,
    bool AddDummyPrefix,
    bool RemoveExtraWhitespaces)
{
    // sentencepiece_model.proto: ModelProto.pieces = 1, trainer_spec = 2, normalizer_spec = 3;
    // SentencePiece.piece = 1, score = 2, type = 3 (NORMAL = 1 ... BYTE = 6, which GGUF's token types share);
    // TrainerSpec.model_type = 3 (UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4), byte_fallback = 35,
    // unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43; NormalizerSpec.name = 1, add_dummy_prefix = 3,
    // remove_extra_whitespaces = 4.
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;
    public const int Unigram = 1, Bpe = 2;

    public static GgufSentencePiece Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            return Parse(bytes);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException or DecoderFallbackException)
        {
            throw new InvalidDataException($"'{path}' is not a valid SentencePiece model (protobuf decoding failed: {e.Message}).", e);
        }
    }

    static GgufSentencePiece Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<(string, float, int)>();
        int modelType = Unigram, unk = 0, bos = 1, eos = 2, pad = -1;
        bool byteFallback = false, addDummyPrefix = true, removeExtra = true;
        string normalizer = "";
        var reader = new Reader(data);
        while (!reader.End)
        {
            var (field, wire) = reader.Tag();
            if (field == 1 && wire == 2) pieces.Add(ParsePiece(reader.Bytes()));
            else if (field == 2 && wire == 2)
            {
                var trainer = new Reader(reader.Bytes());
                while (!trainer.End)
                {
                    var (f, w) = trainer.Tag();
                    if (w != 0) { trainer.Skip(w); continue; }
                    var value = trainer.Varint();
                    switch (f)
                    {
                        case 3: modelType = (int)value; break;
                        case 35: byteFallback = value != 0; break;
                        case 40: unk = (int)value; break;
                        case 41: bos = (int)value; break;
                        case 42: eos = (int)value; break;
                        case 43: pad = (int)value; break;
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                var norm = new Reader(reader.Bytes());
                while (!norm.End)
                {
                    var (f, w) = norm.Tag();
                    if (f == 1 && w == 2) normalizer = Encoding.UTF8.GetString(norm.Bytes());
                    else if (f == 3 && w == 0) addDummyPrefix = norm.Varint() != 0;
                    else if (f == 4 && w == 0) removeExtra = norm.Varint() != 0;
                    else norm.Skip(w);
                }
            }
            else reader.Skip(wire);
        }
        return new GgufSentencePiece(pieces, modelType, unk, bos, eos, pad, byteFallback, normalizer, addDummyPrefix, removeExtra);
    }

    static (string, float, int) ParsePiece(ReadOnlySpan<byte> data)
    {
        string piece = "";
        float score = 0;
        int type = Normal;
        var r = new Reader(data);
        while (!r.End)
        {
            var (f, w) = r.Tag();
            if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(r.Bytes());
            else if (f == 2 && w == 5) score = r.Fixed32();
            else if (f == 3 && w == 0) type = (int)r.Varint();
            else r.Skip(w);
        }
        return (piece, score, type);
    }

    ref struct Reader(ReadOnlySpan<byte> data)
    {
        readonly ReadOnlySpan<byte> _data = data;
        int _position;

        public readonly bool End => _position >= _data.Length;

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = _data[_position++];
                result |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return result;
            }
            throw new OverflowException("varint longer than 10 bytes");
        }

        public (int Field, int Wire) Tag()
        {
            var tag = Varint();
            return ((int)(tag >> 3), (int)(tag & 7));
        }

        public ReadOnlySpan<byte> Bytes()
        {
            var length = checked((int)Varint());
            var slice = _data.Slice(_position, length);
            _position += length;
            return slice;
        }

        public float Fixed32()
        {
            var value = BinaryPrimitives.ReadSingleLittleEndian(_data.Slice(_position, 4));
            _position += 4;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _position += 8; break;
                case 2: Bytes(); break;
                case 5: _position += 4; break;
                default: throw new OverflowException($"unsupported protobuf wire type {wire}");
            }
            if (_position > _data.Length) throw new ArgumentOutOfRangeException(nameof(wire), "field runs past the end of the message");
        }
    }
}
