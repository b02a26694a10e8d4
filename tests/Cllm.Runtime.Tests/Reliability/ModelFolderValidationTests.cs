using System.Text.Json.Nodes;
using Cllm.Checkpoints;
using Cllm.Model;
using Cllm.Tests.Text;
using Cllm.Text;
using Xunit;
using static TorchSharp.torch;

namespace Cllm.Tests.Reliability;

/// <summary>
/// Model folders with one file wrong: tokenizer configs, generation_config.json, tokenizer.json, weights. Each is
/// refused with an error naming the file and the value, or (where the folder is still sound) loads correctly.
/// </summary>
public sealed class ModelFolderValidationTests : IDisposable
{
    readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>The built-in SentencePiece tokenizer plus one JSON file with the given text.</summary>
    string TokenizerFolder(string file, string text)
    {
        BuiltInTokenizers.WriteSentencePiece4k(_folder.Path);
        File.WriteAllText(_folder.File(file), text);
        return _folder.Path;
    }

    public static TheoryData<string, string, string> BadGenerationConfigs => new()
    {
        { "{\"eos_token_id\": 999999}", "EOS id 999999", "generation_config.json" },
        { "{\"eos_token_id\": [2, 4096]}", "EOS id 4096", "generation_config.json" },
        { "{\"eos_token_id\": -1}", "-1", "'eos_token_id'" },
        { "{\"eos_token_id\": 2.5}", "2.5", "'eos_token_id'" },
        { "{\"eos_token_id\": \"2\"}", "\"2\"", "'eos_token_id'" },
        { "{\"eos_token_id\": 1e20}", "1e20", "'eos_token_id'" },
        { "{\"eos_token_id\": [2, \"x\"]}", "\"x\"", "'eos_token_id[1]'" },
        { "{\"eos_token_id\": [2, null]}", "null", "'eos_token_id[1]'" },
        { "{\"eos_token_id\": {\"id\": 2}}", "{\"id\": 2}", "'eos_token_id'" },
        { "{\"eos_token_id\": true}", "true", "'eos_token_id'" },
        { "{\"bos_token_id\": -1}", "-1", "'bos_token_id'" },
        { "{\"bos_token_id\": 999999}", "token id 999999", "generation_config.json" },
        { "{\"bos_token_id\": 1.5}", "1.5", "'bos_token_id'" },
        { "{\"bos_token_id\": \"1\"}", "\"1\"", "'bos_token_id'" },
        { "{\"bos_token_id\": [1]}", "[1]", "'bos_token_id'" },
        { "{\"eos_token_id\": 2", "not valid JSON", "generation_config.json" },
    };

    [Theory]
    [MemberData(nameof(BadGenerationConfigs))]
    public void ABadGenerationConfigNamesFieldAndValue(string text, string value, string field)
    {
        var folder = TokenizerFolder("generation_config.json", text);
        var e = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(folder));
        Assert.Contains(value, e.Message);
        Assert.Contains(field, e.Message);
        Assert.Contains("generation_config.json", e.Message);
    }

    public static TheoryData<string, string, string> BadTokenizerConfigs => new()
    {
        { "{\"add_bos_token\": \"yes\"}", "\"yes\"", "'add_bos_token'" },
        { "{\"add_bos_token\": 1}", "1", "'add_bos_token'" },
        { "{\"bos_token\": 5}", "5", "'bos_token'" },
        { "{\"eos_token\": [\"</s>\"]}", "[\"</s>\"]", "'eos_token'" },
        { "{\"eos_token\": {\"text\": \"</s>\"}}", "{\"text\": \"</s>\"}", "'eos_token'" },
        { "{\"added_tokens_decoder\": {\"-5\": {\"content\": \"<x>\"}}}", "'-5'", "added_tokens_decoder.-5" },
        { "{\"added_tokens_decoder\": {\"abc\": {\"content\": \"<x>\"}}}", "'abc'", "added_tokens_decoder.abc" },
        { "{\"added_tokens_decoder\": {\"4.5\": {\"content\": \"<x>\"}}}", "'4.5'", "added_tokens_decoder.4.5" },
        { "{\"added_tokens_decoder\": {\"4096\": {\"text\": \"<x>\"}}}", "{\"text\": \"<x>\"}", "added_tokens_decoder.4096" },
        { "{\"added_tokens_decoder\": {\"4096\": \"<x>\"}}", "\"<x>\"", "added_tokens_decoder.4096" },
        { "{\"added_tokens_decoder\": {\"4096\": {\"content\": 7}}}", "{\"content\": 7}", "added_tokens_decoder.4096" },
        { "{\"bos_token\": \"<s>\",", "not valid JSON", "tokenizer_config.json" },
    };

    [Theory]
    [MemberData(nameof(BadTokenizerConfigs))]
    public void ABadTokenizerConfigNamesFieldAndValue(string text, string value, string field)
    {
        var folder = TokenizerFolder("tokenizer_config.json", text);
        var e = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(folder));
        Assert.Contains(value, e.Message);
        Assert.Contains(field, e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
    }

    [Theory]
    [InlineData("{\"bos_token\": 7}")]
    [InlineData("{\"eos_token\": false}")]
    public void ABadSpecialTokensMapNamesTheFile(string text)
    {
        var folder = TokenizerFolder("special_tokens_map.json", text);
        var e = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(folder));
        Assert.Contains("special_tokens_map.json: field '", e.Message);
    }

    [Fact]
    public void ValidIdsInGenerationConfigAreUsed()
    {
        var folder = TokenizerFolder("generation_config.json", "{\"eos_token_id\": [2, 7], \"bos_token_id\": 1}");
        var tokenizer = TextTokenizer.Load(folder);
        Assert.Equal([2, 7], tokenizer.EosIds);
        Assert.Equal(1, tokenizer.BosId);
    }

    /// <summary>The fixture's byte-level BPE tokenizer.json with <paramref name="edit"/> applied.</summary>
    string EditedBpeFolder(Action<JsonObject> edit, bool withSentencePieceBeside = false)
    {
        foreach (var file in Directory.GetFiles(TokenizerFixtures.Folder("bpe")))
            File.Copy(file, _folder.File(Path.GetFileName(file)), overwrite: true);
        var json = JsonNode.Parse(File.ReadAllText(_folder.File("tokenizer.json")))!.AsObject();
        edit(json);
        File.WriteAllText(_folder.File("tokenizer.json"), json.ToJsonString());
        if (withSentencePieceBeside)
        {
            BuiltInTokenizers.WriteSentencePiece4k(_folder.Path);
            File.Delete(_folder.File("tokenizer_config.json"));
            File.Delete(_folder.File("generation_config.json"));
        }
        return _folder.Path;
    }

    [Theory]
    [InlineData("remove")]
    [InlineData("empty")]
    [InlineData("null")]
    public void ATokenizerJsonWithoutMergesIsRefused(string how)
    {
        var folder = EditedBpeFolder(j =>
        {
            var model = j["model"]!.AsObject();
            if (how == "remove") model.Remove("merges");
            else model["merges"] = how == "empty" ? new JsonArray() : null;
        });
        var e = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(folder));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("model.merges is missing or empty", e.Message);
    }

    [Fact]
    public void ATokenizerJsonWithoutMergesDoesNotWinOverTokenizerModel()
    {
        var folder = EditedBpeFolder(j => j["model"]!.AsObject().Remove("merges"), withSentencePieceBeside: true);
        var tokenizer = TextTokenizer.Load(folder);
        Assert.Equal(TextTokenizer.SentencePieceKind, tokenizer.Kind);
        Assert.Equal(TokenizerFixtures.LoadBuiltInSentencePiece().Encode("Hello, world!"), tokenizer.Encode("Hello, world!"));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(-100)]
    public void ANegativeAddedTokenIdInTokenizerJsonIsRefused(int id)
    {
        var folder = EditedBpeFolder(j => j["added_tokens"]![0]!["id"] = id);
        var e = Assert.Throws<InvalidDataException>(() => TextTokenizer.Load(folder));
        Assert.Contains("added_tokens entry", e.Message);
        Assert.Contains(id.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Fact]
    public void AModelFolderThatIsAFileOrMissingIsNamed()
    {
        var file = _folder.File("not-a-folder");
        File.WriteAllText(file, "x");
        Assert.Contains("not-a-folder", Assert.ThrowsAny<IOException>(() => TextTokenizer.Load(file)).Message);
        Assert.Contains("not-a-folder", Assert.ThrowsAny<IOException>(() => ModelFiles.Load(file)).Message);
        Assert.Contains("missing", Assert.ThrowsAny<IOException>(() => ModelFiles.Load(_folder.File("missing"))).Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AnUnreadableFolderIsReportedAsUnreadable()
    {
        BuiltInTokenizers.WriteSentencePiece4k(_folder.Path);
        var locked = Directory.CreateDirectory(_folder.File("locked")).FullName;
        File.Copy(_folder.File("tokenizer.model"), Path.Combine(locked, "tokenizer.model"));
        File.SetUnixFileMode(locked, UnixFileMode.None);
        try
        {
            bool readable;
            try { Directory.EnumerateFileSystemEntries(locked).Any(); readable = true; }
            catch (UnauthorizedAccessException) { readable = false; }
            if (readable)
            {
                // Root reads anything: then the folder is simply loaded.
                Assert.Equal(TextTokenizer.SentencePieceKind, TextTokenizer.Load(locked).Kind);
                return;
            }
            var e = Assert.Throws<UnauthorizedAccessException>(() => TextTokenizer.Load(locked));
            Assert.Contains("cannot be read", e.Message);
            Assert.Contains(locked, e.Message);
            Assert.Contains("cannot be read", Assert.Throws<UnauthorizedAccessException>(() => ModelFiles.Load(locked)).Message);
        }
        finally
        {
            File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>A tiny model folder (the built-in tokenizer's 4096 ids) written by ModelFiles.Save.</summary>
    string ModelFolder(ScalarType? weightType = null, Action<Dictionary<string, Tensor>>? editWeights = null)
    {
        var path = _folder.File("model");
        using (var model = new Cllm.Model.Transformer(ModelConfig.Preset("tiny") with { NumLayers = 1 }))
        {
            model.InitializeRandom(1);
            ModelFiles.Save(model, path);
        }
        BuiltInTokenizers.WriteSentencePiece4k(path);
        if (weightType is not null || editWeights is not null)
        {
            var file = Path.Combine(path, HfCheckpoint.SingleFileName);
            using var scope = NewDisposeScope();
            var weights = SafeTensors.Read(file);
            if (weightType is { } t) weights["model.layers.0.mlp.up_proj.weight"] = weights["model.layers.0.mlp.up_proj.weight"].to(t);
            editWeights?.Invoke(weights);
            SafeTensors.Write(file, weights);
        }
        return path;
    }

    [Theory]
    [InlineData(ScalarType.Int32)]
    [InlineData(ScalarType.Int64)]
    [InlineData(ScalarType.Int8)]
    [InlineData(ScalarType.Byte)]
    [InlineData(ScalarType.Int16)]
    [InlineData(ScalarType.Bool)]
    public void IntegerWeightsAreRefused(ScalarType type)
    {
        var folder = ModelFolder(type);
        var e = Assert.Throws<InvalidDataException>(() => CllmEngine.Load(folder));
        Assert.Contains("tensor 'model.layers.0.mlp.up_proj.weight' is stored as", e.Message);
        Assert.Contains("F32, F16 or BF16", e.Message);
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float64)]
    public void OtherFloatWeightsLoad(ScalarType type)
    {
        using var engine = CllmEngine.Load(ModelFolder(type));
        Assert.Equal(ScalarType.Float32, engine.Model.DType);
    }

    [Fact]
    public void ATokenizerWithIdsBeyondTheEmbeddingIsRefused()
    {
        var folder = ModelFolder();
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            "{\"added_tokens_decoder\": {\"5000\": {\"content\": \"<|tool|>\", \"special\": true}}}");
        var e = Assert.Throws<InvalidDataException>(() => CllmEngine.Load(folder));
        Assert.Contains("token ids up to 5000 ('<|tool|>'", e.Message);
        Assert.Contains("vocab_size is 4096", e.Message);
    }

    [Theory]
    [InlineData("{\"eos_token_id\": 4096}", "eos_token_id")]
    [InlineData("{\"bos_token_id\": -3}", "bos_token_id")]
    [InlineData("{\"vocab_size\": \"4096\"}", "vocab_size")]
    [InlineData("{\"hidden_size\": 64.0001}", "hidden_size")]
    public void ABadConfigInAWholeFolderFailsBeforeTheWeightsAreRead(string patch, string field)
    {
        var folder = ModelFolder();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject()) config[key] = value?.DeepClone();
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => CllmEngine.Load(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains(field, e.Message);
    }
}
