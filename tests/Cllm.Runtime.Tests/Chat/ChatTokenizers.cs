using Cllm.Tests.Text;
using Cllm.Text;

namespace Cllm.Tests.Chat;

/// <summary>Real tokenizers with real chat markers, each with the chat format that uses them.</summary>
static class ChatTokenizers
{
    static readonly Lazy<TextTokenizer> s_cllm = new(() => TextTokenizer.Load(Path.Combine(RepoRoot(), "models", "cllm-tiny")));
    static readonly Lazy<TextTokenizer> s_bpe = new(() => TextTokenizer.Load(TokenizerFixtures.Folder("bpe")));
    static readonly Lazy<TextTokenizer> s_tiktoken = new(() => TextTokenizer.Load(TokenizerFixtures.Folder("tiktoken")));

    /// <summary>The default model's SentencePiece tokenizer (markers are added tokens 3..9) with the cllm format; Qwen2-style
    /// byte-level BPE with ChatML; LLaMA-3's tiktoken file with the LLaMA-3 format.</summary>
    public static readonly string[] Names = ["cllm", "chatml", "llama3"];

    public static (TextTokenizer Tokenizer, IChatFormat Format) Get(string name) => name switch
    {
        "cllm" => (s_cllm.Value, ChatFormats.Cllm),
        "chatml" => (s_bpe.Value, ChatFormats.ChatMl),
        "llama3" => (s_tiktoken.Value, ChatFormats.Llama3),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Cllm.sln"))) return dir.FullName;
        throw new InvalidOperationException("Cllm.sln not found above " + AppContext.BaseDirectory);
    }
}
