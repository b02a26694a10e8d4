using Cllm.Text;
using Xunit;

namespace Cllm.Tests.Text;

/// <summary>Broken or missing tokenizer files must say which file and what is wrong.</summary>
public sealed class TokenizerLoadErrorTests
{
    [Fact]
    public void MissingFolderIsNamed()
    {
        string missing = Path.Combine(Path.GetTempPath(), "cllm-no-such-model-" + Guid.NewGuid().ToString("N"));
        var ex = Assert.Throws<FileNotFoundException>(() => TextTokenizer.Load(missing));
        Assert.Contains(missing, ex.Message);
    }

    [Fact]
    public void FolderWithoutTokenizerNamesWhatWasExpected()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("config.json"), "{}");
        var ex = Assert.Throws<FileNotFoundException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", ex.Message);
        Assert.Contains("tokenizer.model", ex.Message);
        Assert.Contains(dir.Path, ex.Message);
    }

    [Fact]
    public void CorruptSentencePieceModelIsNamed()
    {
        using var dir = new TempFolder();
        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        File.WriteAllBytes(dir.File("tokenizer.model"), garbage);

        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.model"), ex.Message);
        Assert.Contains("SentencePiece", ex.Message);
    }

    [Fact]
    public void TruncatedSentencePieceModelIsNamed()
    {
        using var dir = new TempFolder();
        using (var model = BuiltInTokenizers.OpenSentencePiece4k())
        {
            var bytes = new byte[model.Length / 2];
            model.ReadExactly(bytes);
            File.WriteAllBytes(dir.File("tokenizer.model"), bytes);
        }

        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.model"), ex.Message);
    }

    [Fact]
    public void EmptyModelFileIsNamed()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("tokenizer.model"), []);
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.model"), ex.Message);
        Assert.Contains("empty", ex.Message);
    }

    [Fact]
    public void CorruptTiktokenLineIsNamed()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("tokenizer.model"), "IQ== 0\nIg== 1\nthis is not base64 2\n");
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.model"), ex.Message);
        Assert.Contains("line 3", ex.Message);
    }

    [Fact]
    public void TruncatedTokenizerJsonIsNamed()
    {
        using var dir = new TempFolder();
        string json = File.ReadAllText(Path.Combine(TokenizerFixtures.Folder("bpe"), "tokenizer.json"));
        File.WriteAllText(dir.File("tokenizer.json"), json[..(json.Length / 2)]);
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.json"), ex.Message);
        Assert.Contains("JSON", ex.Message);
    }

    [Fact]
    public void TokenizerJsonWithoutVocabIsNamed()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("tokenizer.json"),
            """{"model": {"type": "BPE", "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}""");
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.json"), ex.Message);
        Assert.Contains("model.vocab", ex.Message);
    }

    [Fact]
    public void MergeOfUnknownSymbolsIsNamed()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("tokenizer.json"),
            """{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "ByteLevel"}}""");
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.json"), ex.Message);
    }

    [Fact]
    public void TokenizerJsonWinsAndAnUnsupportedOneFallsBackToTokenizerModel()
    {
        // LLaMA-2 HF folders: a SentencePiece-style tokenizer.json next to tokenizer.model. The JSON is what
        // the reference runs, so it is read; one we cannot run (a Unigram model) leaves tokenizer.model.
        using var dir = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(dir.Path);
        File.WriteAllText(dir.File("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"\u2581\": 1, \"\u2581a\": 2}, " +
            "\"merges\": [[\"\u2581\", \"a\"]]}, \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"}}");
        var fromJson = TextTokenizer.Load(dir.Path);
        Assert.Equal("sentencepiece", fromJson.Kind);
        Assert.Equal([2, 2], fromJson.Encode(" a a", addSpecial: false));

        File.WriteAllText(dir.File("tokenizer.json"), """{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""");
        Assert.Equal(4096, TextTokenizer.Load(dir.Path).VocabularySize);

        File.Delete(dir.File("tokenizer.model"));
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer.json"), ex.Message);
        Assert.Contains("Unigram", ex.Message);
    }

    [Fact]
    public void CorruptConfigIsNamed()
    {
        using var dir = new TempFolder();
        BuiltInTokenizers.WriteSentencePiece4k(dir.Path);
        File.WriteAllText(dir.File("tokenizer_config.json"), "{ \"bos_token\": ");
        var ex = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(dir.Path));
        Assert.Contains(dir.File("tokenizer_config.json"), ex.Message);
    }
}
