using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Text;

namespace Cllm.Oracle.Tests;

/// <summary>Token ids of varied text are identical between our tokenizers and llama.cpp's reading of the exported vocabulary.</summary>
public sealed class TokenizerAgreementTests(ITestOutputHelper output) : IDisposable
{
    public const string VariedText =
        "Hello, world!  Two  spaces,\ttabs and\nnew lines\n\n  indented. Numbers: 3.14159, 2024-05-17, 1,000,000 and 42nd. " +
        "Punctuation: (a+b)*c = d; \"quotes\" 'single' — dashes… [brackets] {braces} <tags> a/b\\c @user #tag $5 100% ^~`|. " +
        "Accents: café, naïve, Müller, São Paulo, Ελληνικά, Привет, Ångström. Emoji: 🙂🚀👍🏽 and CJK: 漢字, 日本語, 한국어. " +
        "Code: for (int i = 0; i < n; i++) { sum += x[i]; } SELECT name FROM t WHERE id = 7;";

    static readonly string[] Texts =
    [
        VariedText,
        " leading space",
        "trailing spaces   ",
        "x",
        "don't you're we'll I'M 123456789 0.5e-10",
        "ünïcödé 🙂",
    ];

    /// <summary>Runs of three or more spaces before a word, with the ids SentencePiece's own spm_encode gives (sp4k).</summary>
    static readonly (string Text, int[] SpmEncodeIds)[] SpaceRuns =
    [
        ("hello   world", [3955, 384, 3959, 273, 3002]),
        ("x   indented.", [1671, 273, 908, 309, 272, 3975]),
        ("a   b    c     d", [261, 273, 281, 931, 270, 319, 293]),
    ];

    readonly string _root = Directory.CreateTempSubdirectory("cllm-oracle-tok-").FullName;

    [Fact]
    public void SentencePiece4k() => Compare("sp4k", BuiltInTokenizers.WriteSentencePiece4k);

    /// <summary>llama.cpp tokenizes runs of spaces exactly as SentencePiece itself (spm_encode 0.1.97) does.</summary>
    [Fact]
    public void SentencePiece4kSpaceRunsInLlamaCppEqualSpmEncode()
    {
        var dir = Path.Combine(_root, "sp4k-runs");
        BuiltInTokenizers.WriteSentencePiece4k(dir);
        using var llama = Open(dir, "sp4k-runs", out _);
        foreach (var (text, ids) in SpaceRuns)
            Assert.Equal(ids, llama.Tokenize(text, addBos: false));
    }

    /// <summary>Runs of three or more spaces before a word: our SentencePiece merge loop gives what spm_encode gives.</summary>
    [Fact]
    public void SentencePiece4kSpaceRunsInOurTokenizerEqualSpmEncode()
    {
        var dir = Path.Combine(_root, "sp4k-runs-ours");
        BuiltInTokenizers.WriteSentencePiece4k(dir);
        var tokenizer = TextTokenizer.Load(dir);
        foreach (var (text, ids) in SpaceRuns)
            Assert.Equal(ids, tokenizer.Encode(text, addSpecial: false));
    }

    [Fact]
    public void QwenStyleByteLevelBpe() => Compare("bpe", dir => OracleModels.CopyFixture("bpe", dir));

    [Fact]
    public void TiktokenAsByteLevelBpeWithRecoveredMerges() => Compare("tiktoken", dir => OracleModels.CopyFixture("tiktoken", dir));

    /// <summary>
    /// The default model's tokenizer: SentencePiece with chat markers. Plain text only: after a control token
    /// llama.cpp starts the next text with SentencePiece's dummy "▁" again (like Hugging Face's legacy LlamaTokenizer),
    /// where we (and SentencePiece) do not, so chat-formatted text is given to llama.cpp as ids (see DefaultModelTests).
    /// </summary>
    [Fact]
    public void DefaultModelSentencePieceWithChatMarkers()
    {
        // The committed default model carries the pipeline's tokenizer (tokenizer.model + tokenizer_config.json).
        var root = OracleModels.RepositoryRoot();
        var source = root is null ? null : Path.Combine(root, "models", "cllm-tiny");
        Prerequisite.Require(source is not null && File.Exists(Path.Combine(source, "tokenizer.model")),
            "models/cllm-tiny/tokenizer.model (the default model's tokenizer) is not there");
        Compare("default", dir =>
        {
            Directory.CreateDirectory(dir);
            File.Copy(Path.Combine(source, "tokenizer.model"), Path.Combine(dir, "tokenizer.model"));
            File.Copy(Path.Combine(source, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        });
    }

    void Compare(string name, Action<string> writeTokenizer, IReadOnlyList<string>? texts = null)
    {
        texts ??= Texts;
        var dir = Path.Combine(_root, name);
        writeTokenizer(dir);
        using var llama = Open(dir, name, out var tokenizer);
        var failures = new List<string>();
        foreach (var text in texts)
        {
            var ours = tokenizer.Encode(text);
            var theirs = llama.Tokenize(text, addBos: true);
            output.WriteLine($"{name}: {ours.Length} tokens for {text.Length} chars");
            if (!ours.SequenceEqual(theirs))
            {
                var at = GreedyAgreementTests.FirstDifference(ours, theirs);
                failures.Add($"{name}: ids differ from position {at} for \"{text}\"\n" +
                             $" ours:   {string.Join(' ', ours.Skip(at).Take(8).Select(Show))}\n theirs: {string.Join(' ', theirs.Skip(at).Take(8).Select(Show))}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        string Show(int id) => $"{id}:{tokenizer.IdToToken(id)}";
    }

    /// <summary>The tokenizer of <paramref name="dir"/> in llama.cpp, carried by the smallest model that holds its vocabulary.</summary>
    LlamaCppRunner Open(string dir, string name, out TextTokenizer tokenizer)
    {
        tokenizer = TextTokenizer.Load(dir);
        var config = ModelConfig.Preset("tiny") with
        {
            VocabSize = tokenizer.VocabularySize, NumLayers = 1, BosTokenId = tokenizer.BosId, EosTokenIds = tokenizer.EosIds.ToArray(),
        };
        using var model = new Transformer(config);
        model.InitializeRandom(1, 0.02);
        var gguf = Path.Combine(_root, name + ".gguf");
        GgufExport.Export(model, GgufVocabulary.FromModelFolder(dir, tokenizer), gguf);
        return new LlamaCppRunner(gguf, contextSize: 64);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
