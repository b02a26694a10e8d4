using Cllm.Text;
using System.Text.Json;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Tests.Training.Data;

public sealed class CorpusWriterTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "cllm-corpus-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void WrittenFilesReadBackAsTheSameExamples()
    {
        var conversations = new TaskGenerator(6).Generate(300, Split.Train).ToList();
        string examples = Path.Combine(_dir, "train.jsonl"), prompts = Path.Combine(_dir, "eval.jsonl"), text = Path.Combine(_dir, "tokenizer.txt");
        int exampleCount = CorpusWriter.WriteExamples(examples, conversations);
        int promptCount = CorpusWriter.WritePrompts(prompts, conversations);
        CorpusWriter.WriteTokenizerText(text, conversations);

        var expected = conversations.SelectMany(CorpusWriter.ToExamples).ToList();
        Assert.Equal(expected.Count, exampleCount);
        Assert.Equal(conversations.Count(c => c.Domain == "tool"), exampleCount - conversations.Count);
        Assert.Equal(expected, CorpusWriter.ReadExamples(examples));
        Assert.Equal(conversations.Count, promptCount);
        Assert.Equal(conversations.Select(c => (c.Domain, c.Answer)), CorpusWriter.ReadPrompts(prompts).Select(p => (p.Domain, p.Answer)));
        Assert.All(CorpusWriter.ReadPrompts(prompts), p => Assert.EndsWith("<|assistant|>\n", p.Prompt));

        // One JSON object per line with exactly the documented fields, markers and SQL quotes unescaped.
        string firstLine = File.ReadLines(examples).First();
        Assert.Equal(["domain", "prompt", "completion", "answer"], JsonDocument.Parse(firstLine).RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Contains("<|end|>", firstLine);
        Assert.Contains(conversations.Select(c => CllmChatFormat.Render(c.Turns, c.Tools, false)).First(), File.ReadAllText(text));
        Assert.False(File.ReadAllBytes(text).AsSpan().StartsWith(new byte[] { 0xEF, 0xBB, 0xBF }), "no BOM");
    }

    [Theory]
    [InlineData("{\"domain\":\"sql\",\"prompt\":\"p\",\"completion\":\"c\"", "invalid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("{\"domain\":\"sql\",\"prompt\":\"p\",\"answer\":\"a\"}", "\"completion\"")]
    [InlineData("{\"domain\":\"sql\",\"prompt\":3,\"completion\":\"c\",\"answer\":\"a\"}", "\"prompt\"")]
    public void MalformedLinesNameTheFileAndLine(string badLine, string reason)
    {
        Directory.CreateDirectory(_dir);
        string path = Path.Combine(_dir, "bad.jsonl");
        string good = "{\"domain\":\"math\",\"prompt\":\"p\",\"completion\":\"c\",\"answer\":\"1\"}";
        File.WriteAllLines(path, [good, "", good, badLine, good]);
        int read = 0;
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (var _ in CorpusWriter.ReadExamples(path)) read++;
        });
        Assert.Contains(path, e.Message);
        Assert.Contains("line 4", e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Equal(2, read); // lines before the bad one were read, the blank line skipped
    }
}
