using System.Text.Json;
using Cllm.Model;

namespace Cllm.Text;

/// <summary>The built-in chat formats, by name, and detection of a model folder's format.</summary>
public static class ChatFormats
{
    public static IChatFormat Cllm { get; } = new CllmFormat();
    public static IChatFormat ChatMl { get; } = new ChatMlFormat();
    public static IChatFormat Llama2 { get; } = new Llama2Format();
    public static IChatFormat Llama3 { get; } = new Llama3Format();
    public static IChatFormat Vicuna { get; } = new VicunaFormat();
    public static IChatFormat Instruction { get; } = new InstructionFormat();

    public static IReadOnlyList<IChatFormat> All { get; } = [Cllm, ChatMl, Llama2, Llama3, Vicuna, Instruction];

    /// <summary>A built-in format by its <see cref="IChatFormat.Name"/> (case-insensitive; "qwen2", "mistral", "alpaca" and "deepseek" are accepted too).</summary>
    public static IChatFormat FromName(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "cllm" => Cllm,
            "chatml" or "qwen2" or "qwen" or "hermes" => ChatMl,
            "llama2" or "llama-2" or "mistral" or "inst" => Llama2,
            "llama3" or "llama-3" => Llama3,
            "vicuna" => Vicuna,
            "instruction" or "alpaca" or "deepseek" or "deepseek-coder" => Instruction,
            _ => throw new ArgumentException(
                $"Unknown chat format '{name}'; expected one of {string.Join(", ", All.Select(f => f.Name))}.", nameof(name)),
        };
    }

    /// <summary>
    /// The format of a model folder, from tokenizer_config.json: its <c>chat_format</c> name, else its own
    /// <c>chat_template</c> (a <see cref="TemplateChatFormat"/>), else what its special tokens contain, else the architecture (Qwen2: ChatML; LLaMA with a
    /// 128k vocabulary: LLaMA-3; Mistral: [INST]; other LLaMA-family models without a template are taken to
    /// be instruction-tuned the CLLM way).
    /// </summary>
    public static IChatFormat Detect(string modelDirectory, ModelConfig config)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        ArgumentNullException.ThrowIfNull(config);
        string path = Path.Combine(modelDirectory, "tokenizer_config.json");
        if (File.Exists(path))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("chat_format", out var named) && named.ValueKind == JsonValueKind.String)
                    return FromName(named.GetString()!);
                if (root.TryGetProperty("chat_template", out _) && OwnTemplate(modelDirectory, path) is { } own)
                    return own; // the model's own template, rendered as transformers renders it
                if (FromTemplate(TemplateText(root)) is { } fromTemplate) return fromTemplate;
                if (FromTemplate(root.GetRawText()) is { } fromTokens) return fromTokens; // added tokens name the markers
            }
        }

        return config.Architecture switch
        {
            "Qwen2ForCausalLM" or "Qwen3ForCausalLM" => ChatMl,
            "MistralForCausalLM" => Llama2,
            _ when config.VocabSize >= 128_000 => Llama3,
            _ => Instruction,
        };
    }

    static TemplateChatFormat? OwnTemplate(string modelDirectory, string path)
    {
        try
        {
            return TemplateChatFormat.FromModelDirectory(modelDirectory);
        }
        catch (Templates.TemplateException e)
        {
            throw new InvalidDataException($"{e.Message} To use the model anyway, name a built-in chat format instead of " +
                $"'{path}''s chat_template (CllmChatClientOptions.ChatFormat, or --format): {string.Join(", ", All.Select(f => f.Name))}.", e);
        }
    }

    /// <summary>Recognises a template (or any text naming the markers) by the markers it uses; null if none.</summary>
    public static IChatFormat? FromTemplate(string? template)
    {
        if (string.IsNullOrEmpty(template)) return null;
        bool Has(string s) => template.Contains(s, StringComparison.Ordinal);
        if (Has(CllmChatFormat.Assistant) && Has(CllmChatFormat.End)) return Cllm;
        if (Has("<|im_start|>")) return ChatMl;
        if (Has("<|start_header_id|>")) return Llama3;
        if (Has("[INST]")) return Llama2;
        if (Has("### Instruction")) return Instruction;
        if (Has("USER:") && Has("ASSISTANT:")) return Vicuna;
        return null;
    }

    // chat_template is a string, or a list of {name, template} where "default" is the chat one.
    static string? TemplateText(JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out var t)) return null;
        if (t.ValueKind == JsonValueKind.String) return t.GetString();
        if (t.ValueKind != JsonValueKind.Array) return null;
        return t.EnumerateArray()
            .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("template", out var v) && v.ValueKind == JsonValueKind.String)
            .OrderBy(e => e.TryGetProperty("name", out var n) && n.GetString() == "default" ? 0 : 1)
            .Select(e => e.GetProperty("template").GetString())
            .FirstOrDefault();
    }
}
