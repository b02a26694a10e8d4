using Cllm.Model;
using Cllm.Text;
using Cllm.Training.Data;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

public sealed class ChatFormatTests
{
    static readonly ToolCall OrderCall = new("get_order_status", new Dictionary<string, object?> { ["order_id"] = 7 });

    static readonly ChatTurn[] Conversation =
    [
        new("system", "Be brief."),
        new("user", "Hi"),
        new("assistant", "Hello."),
        new("user", "Bye"),
    ];

    [Fact]
    public void TheDefaultFormatIsExactlyTheTrainingRenderer()
    {
        ChatTurn[] turns = [new("user", "Status of order 7?"), new("assistant", "", OrderCall), new("tool", "{\"order_id\":7,\"status\":\"shipped\"}")];
        Assert.Equal(CllmChatFormat.Render(turns, DemoTools.All, true), ChatFormats.Cllm.Render(turns, DemoTools.All, true));
        Assert.Equal("<tool_call>{\"name\":\"calculate\",\"", ChatFormats.Cllm.ForcedToolCallPrefix("calculate"));
        var calls = ChatFormats.Cllm.ParseToolCalls("<tool_call>" + OrderCall.ToJson() + "</tool_call>");
        Assert.Equal([OrderCall], calls!);
        Assert.Null(ChatFormats.Cllm.ParseToolCalls("<tool_call>{\"name\":"));
        // A new turn's marker ends the answer, so markers never reach the caller as text.
        Assert.Equal([CllmChatFormat.End, CllmChatFormat.User, CllmChatFormat.Assistant, CllmChatFormat.System, CllmChatFormat.Tool],
            ChatFormats.Cllm.StopTexts);
    }

    [Fact]
    public void ChatMlWritesHermesTools()
    {
        ChatTurn[] turns = [new("user", "Status of order 7?"), new("assistant", "", OrderCall), new("tool", "{\"status\":\"shipped\"}")];
        string text = ChatFormats.ChatMl.Render(turns, [DemoTools.GetOrderStatus], addGenerationPrompt: true);
        Assert.StartsWith("<|im_start|>system\n# Tools\n", text);
        Assert.Contains("<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_order_status\",\"description\":\"Get an order's status.\",\"parameters\":{\"type\":\"object\"", text);
        Assert.EndsWith(
            "<|im_start|>user\nStatus of order 7?<|im_end|>\n" +
            "<|im_start|>assistant\n<tool_call>\n{\"name\":\"get_order_status\",\"arguments\":{\"order_id\":7}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n{\"status\":\"shipped\"}\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n", text);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
            ChatFormats.ChatMl.Render(Conversation, null, true));

        var two = ChatFormats.ChatMl.ParseToolCalls("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>");
        Assert.Equal(["a", "b"], two!.Select(c => c.Name));
    }

    [Fact]
    public void OtherFamiliesRenderTheirTemplates()
    {
        Assert.Equal("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]", ChatFormats.Llama2.Render(Conversation, null, true));
        Assert.Equal(
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            ChatFormats.Llama3.Render(Conversation, null, true));
        Assert.Equal("Be brief. USER: Hi ASSISTANT: Hello.</s>USER: Bye ASSISTANT:", ChatFormats.Vicuna.Render(Conversation, null, true));
        Assert.StartsWith(VicunaFormat.DefaultSystem + " USER: Hi", ChatFormats.Vicuna.Render(Conversation[1..], null, true));
        Assert.Equal("Be brief.\n\n### Instruction:\nHi\n### Response:\nHello.\n### Instruction:\nBye\n### Response:\n",
            ChatFormats.Instruction.Render(Conversation, null, true));
    }

    [Fact]
    public void FamiliesWithoutToolCallingRefuseToolsClearly()
    {
        foreach (var format in new[] { ChatFormats.Llama2, ChatFormats.Llama3, ChatFormats.Vicuna, ChatFormats.Instruction })
        {
            Assert.Null(format.ToolCallStart);
            var e = Assert.Throws<NotSupportedException>(() => format.Render([new("user", "hi")], [DemoTools.GetWeather], true));
            Assert.Contains(format.Name, e.Message);
        }
    }

    [Theory]
    [InlineData("{\"chat_format\": \"cllm\"}", "LlamaForCausalLM", "cllm")]
    [InlineData("{\"chat_format\": \"chatml\"}", "LlamaForCausalLM", "chatml")]
    [InlineData("{\"chat_template\": \"{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}\"}", "LlamaForCausalLM", "template")]
    [InlineData("{\"chat_template\": \"{{ bos_token }}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]{% endif %}\"}", "LlamaForCausalLM", "template")]
    [InlineData("{\"chat_template\": [{\"name\": \"default\", \"template\": \"<|start_header_id|>\"}, {\"name\": \"tool_use\", \"template\": \"x\"}]}", "LlamaForCausalLM", "template")]
    [InlineData("{\"chat_template\": \"{{ 'USER: ' + m.content + ' ASSISTANT:' }}\"}", "LlamaForCausalLM", "template")]
    [InlineData("{\"chat_template\": \"### Instruction:\\n{{ m.content }}\\n### Response:\\n\"}", "LlamaForCausalLM", "template")]
    [InlineData("{\"added_tokens_decoder\": {\"151644\": {\"content\": \"<|im_start|>\", \"special\": true}}}", "LlamaForCausalLM", "chatml")]
    [InlineData("{}", "Qwen2ForCausalLM", "chatml")]
    [InlineData("{}", "Qwen3ForCausalLM", "chatml")]
    [InlineData("{}", "MistralForCausalLM", "llama2")]
    [InlineData("{}", "LlamaForCausalLM", "instruction")]
    public void DetectsTheFormatFromTheFolder(string tokenizerConfig, string architecture, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("cllm-format-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
            var config = ModelConfig.Preset("tiny") with { Architecture = architecture };
            Assert.Equal(expected, ChatFormats.Detect(dir, config).Name);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AMalformedTemplateNamesTheFileThePositionAndTheWayOut()
    {
        var dir = Directory.CreateTempSubdirectory("cllm-format-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}{{ m.content }}\"}");
            var e = Assert.Throws<InvalidDataException>(() => ChatFormats.Detect(dir, ModelConfig.Preset("tiny")));
            Assert.Contains("tokenizer_config.json", e.Message);
            Assert.Contains("line 1, column", e.Message);
            Assert.Contains("endfor", e.Message);
            Assert.Contains("ChatFormat", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ALlama3SizedVocabularyWithoutATemplateIsLlama3AndNamesAreChecked()
    {
        var dir = Directory.CreateTempSubdirectory("cllm-format-").FullName;
        try
        {
            Assert.Equal("llama3", ChatFormats.Detect(dir, ModelConfig.Preset("tiny") with { VocabSize = 128_256 }).Name);
        }
        finally
        {
            Directory.Delete(dir);
        }

        Assert.Same(ChatFormats.ChatMl, ChatFormats.FromName("Qwen2"));
        Assert.Contains("chatml", Assert.Throws<ArgumentException>(() => ChatFormats.FromName("klingon")).Message);
    }

    [Fact]
    public void TheDefaultModelNamesItsFormat() =>
        Assert.Equal("cllm", ChatFormats.Detect(Path.Combine(TestModels.RepoRoot, "models", "cllm-tiny-base"), ModelConfig.Preset("cllm-tiny")).Name);
}
