using System.Text.Json.Nodes;

namespace Cllm.Tests.Text.Templates;

/// <summary>
/// The chat-template fixtures made by scripts/make-template-fixtures.sh: real templates of several families,
/// conversations, and what the two references rendered (transformers.js as "text"/"error", Python jinja2 set up
/// as transformers sets it up under "jinja2").
/// </summary>
internal static class TemplateFixtures
{
    /// <summary>The time strftime_now read when the fixtures were made (the script fixes the clock).</summary>
    public static readonly DateTime Clock = new(2025, 3, 14, 15, 9, 26);

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "templates");

    public static string FamilyFolder(string family) => Path.Combine(Folder, family);

    public static JsonNode Read(string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, file)))!;

    public static JsonObject Expected => Read("expected.json").AsObject();

    public static JsonArray Conversations => Read("conversations.json").AsArray();

    public static JsonObject Conversation(string name) =>
        Conversations.Single(c => c!["name"]!.GetValue<string>() == name)!.AsObject();

    public static IEnumerable<string> Families => Expected.Select(p => p.Key);

    /// <summary>A reference's result: its text, or null when it raised an error.</summary>
    public static string? Text(JsonNode? result) => result?["text"]?.GetValue<string>();
}
