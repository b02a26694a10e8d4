using System.Text.Json.Nodes;
using Cllm.Text.Templates;
using Xunit;

namespace Cllm.Tests.Text.Templates;

/// <summary>
/// Interpreter features, one small template each (scripts/template-feature-cases.json), against what
/// transformers.js's engine and Python jinja2 rendered for them (features.json).
/// </summary>
public sealed class ChatTemplateFeatureTests
{
    [Fact]
    public void EveryFeatureCaseRendersAsAReferenceDoes()
    {
        var failures = new List<string>();
        var cases = TemplateFixtures.Read("features.json").AsArray();
        foreach (var node in cases)
        {
            string template = node!["template"]!.GetValue<string>();
            string? js = node["expected"]?.GetValue<string>();
            string? python = TemplateFixtures.Text(node["jinja2"]);
            string? ours, error = null;
            try
            {
                ours = ChatTemplate.Parse(template, "case").WithClock(() => TemplateFixtures.Clock).Render(node["vars"]!.AsObject());
            }
            catch (TemplateException e)
            {
                ours = null;
                error = e.Message;
                Assert.True(e.Line > 0 && e.Column > 0, $"{template}: the error has no position: {e.Message}");
            }

            // Where both references render, they differ only where transformers.js and Python disagree (true vs True,
            // JSON vs repr for containers); ours must equal one of them. Where one raised, ours must equal the other;
            // where both raised, ours must raise.
            bool ok = (js, python) switch
            {
                (null, null) => ours is null,
                (null, _) => ours == python,
                (_, null) => ours == js,
                _ => ours == js || ours == python,
            };
            if (!ok) failures.Add($"{template}\n  transformers.js: {js ?? "error"}\n  jinja2: {python ?? "error"}\n  ours: {ours ?? error}");
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases differ:\n" + string.Join("\n", failures));
    }

    [Theory]
    [InlineData("{% if x %}\n  {{ 1 + }}\n{% endif %}", 2, 10, "'}}'")]
    [InlineData("line\n{% for m in messages %}{{ m }}", 2, 31, "endfor")]
    [InlineData("{{ 'never closed }}", 1, 4, "string")]
    [InlineData("ok\n\n   {% frobnicate %}", 3, 7, "frobnicate")]
    [InlineData("{{ x | nosuchfilter }}", 1, 8, "nosuchfilter")]
    [InlineData("{% endif %}", 1, 4, "endif")]
    public void MalformedTemplatesFailWithTheirLineAndColumn(string template, int line, int column, string mentions)
    {
        var e = Assert.Throws<TemplateException>(() => ChatTemplate.Parse(template, "tokenizer_config.json").Render(new JsonObject()));
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.Contains($"line {line}, column {column}", e.Message);
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains(mentions, e.Message);
    }

    [Fact]
    public void RaiseExceptionNamesTheTemplateAndCarriesItsMessage()
    {
        var template = ChatTemplate.Parse("{% if messages[0].role == 'system' %}\n{{ raise_exception('System role not supported') }}{% endif %}", "gemma");
        var messages = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "x" }) };
        var e = Assert.Throws<TemplateException>(() => template.Render(messages));
        Assert.Contains("System role not supported", e.Message);
        Assert.Contains("'gemma'", e.Message);
        Assert.Equal(2, e.Line);
    }
}
