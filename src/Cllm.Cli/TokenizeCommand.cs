using System.CommandLine;
using System.Text.Json;
using Cllm.Text;

namespace Cllm.Cli;

/// <summary>
/// <c>cllm tokenize</c>: the ids a model folder's tokenizer gives, one JSON line <c>{"ids": [...]}</c> per
/// input, with the model's BOS/EOS rule applied as Encode applies it (or plain ids with --no-special).
/// </summary>
static class TokenizeCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var text = new Option<string?>("--text") { Description = "Text to tokenize." };
        var input = new Option<string?>("--input") { Description = "JSON lines file, one {\"text\": ...} per line." };
        var noSpecial = new Option<bool>("--no-special") { Description = "Plain ids: no BOS/EOS added around the text." };
        var command = new Command("tokenize", "Print the token ids of text as the model's tokenizer gives them.") { model, text, input, noSpecial };
        command.SetAction(parse => CliOptions.Guard(() =>
        {
            string? single = parse.GetValue(text), file = parse.GetValue(input);
            if ((single is null) == (file is null))
            {
                throw new ArgumentException("Give exactly one of --text T or --input FILE (JSON lines {\"text\": ...}).");
            }

            var tokenizer = TextTokenizer.Load(parse.GetValue(model)!);
            bool addSpecial = !parse.GetValue(noSpecial);
            foreach (string t in single is not null ? [single] : ReadTexts(file!))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { ids = tokenizer.Encode(t, addSpecial) }));
            }

            return 0;
        }));
        return command;
    }

    static IEnumerable<string> ReadTexts(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"--input file '{path}' does not exist.", path);
        }

        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            string? value;
            try
            {
                using var doc = JsonDocument.Parse(line);
                value = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var t) &&
                        t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"'{path}' line {lineNo} is not JSON ({ex.Message}); expected {{\"text\": \"...\"}}.", ex);
            }

            yield return value ?? throw new InvalidDataException($"'{path}' line {lineNo} has no string \"text\"; expected {{\"text\": \"...\"}}.");
        }
    }
}
