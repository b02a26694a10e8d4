using Cllm.Decoding;
using Microsoft.Extensions.AI;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

/// <summary>Precedence as in Microsoft.Extensions.AI's own clients: raw representation, then ChatOptions, then defaults.</summary>
public sealed class SettingsTests : IDisposable
{
    readonly CllmChatClient _client;

    public SettingsTests() => _client = new CllmChatClient(new CllmChatClientOptions
    {
        ModelPath = TestModels.Random, ChatFormat = "cllm",
        Defaults = new GenerationSettings { MaxNewTokens = 30, Temperature = 0.3f, TopP = 0.3f, TopK = 3, Seed = 3, BlockSize = 3 },
    });

    public void Dispose() => _client.Dispose();

    // Each layer gives each field its own value: raw 1x, ChatOptions 2x, defaults 3x (the client above).
    static readonly (string Field, Func<GenerationSettings, object?> Get, Action<ChatOptions> SetChat, GenerationSettings Raw, object Default)[] Fields =
    [
        ("MaxNewTokens", s => s.MaxNewTokens, o => o.MaxOutputTokens = 20, new() { MaxNewTokens = 10 }, 30),
        ("Temperature", s => s.Temperature, o => o.Temperature = 0.2f, new() { Temperature = 0.1f }, 0.3f),
        ("TopP", s => s.TopP, o => o.TopP = 0.2f, new() { TopP = 0.1f }, 0.3f),
        ("TopK", s => s.TopK, o => o.TopK = 2, new() { TopK = 1 }, 3),
        ("Seed", s => s.Seed, o => o.Seed = 2, new() { Seed = 1 }, 3L),
    ];

    [Fact]
    public void TheMatrixOfRawChatOptionsAndDefaults()
    {
        foreach (var (field, get, setChat, raw, fallback) in Fields)
        {
            foreach (bool withRaw in new[] { false, true })
            {
                foreach (bool withChat in new[] { false, true })
                {
                    var options = new ChatOptions();
                    if (withRaw) options.RawRepresentationFactory = _ => raw;
                    if (withChat) setChat(options);
                    object? expected = withRaw ? get(raw) : withChat ? get(ChatLayer(setChat)) : fallback;
                    Assert.True(Equals(expected, get(_client.Settings(options))), $"{field}, raw {withRaw}, ChatOptions {withChat}");
                }
            }
        }

        // Without defaults, the built-in ones: Jacobi, the engine's adaptive block size (null), greedy, DefaultMaxOutputTokens.
        using var bare = new CllmChatClient(_client.Engine, new CllmChatClientOptions { ChatFormat = "cllm" });
        var built = bare.Settings(null).ToOptions();
        Assert.Equal((DecoderKind.Jacobi, (int?)null, 0f, CllmChatClientOptions.DefaultMaxOutputTokens),
            (built.Decoder, built.BlockSize, built.Temperature, built.MaxNewTokens));
        // Cllm's own knobs have no ChatOptions counterpart: raw over defaults.
        Assert.Equal(3, _client.Settings(null).BlockSize);
        Assert.Equal(5, _client.Settings(new ChatOptions { RawRepresentationFactory = _ => new GenerationSettings { BlockSize = 5 } }).BlockSize);
    }

    static GenerationSettings ChatLayer(Action<ChatOptions> set)
    {
        var o = new ChatOptions();
        set(o);
        return new() { MaxNewTokens = o.MaxOutputTokens, Temperature = o.Temperature, TopP = o.TopP, TopK = o.TopK, Seed = o.Seed };
    }

    [Fact]
    public async Task RawSettingsLeaveTheClientsDefaultsInForce()
    {
        // The case from issue 16: an AR client with MaxOutputTokens 5, called with raw settings that only set a seed.
        using var client = new CllmChatClient(_client.Engine, new CllmChatClientOptions
        {
            ChatFormat = "cllm", Defaults = new() { Decoder = DecoderKind.Autoregressive, MaxNewTokens = 5 },
        });
        var response = await client.GetResponseAsync("hi", new ChatOptions { RawRepresentationFactory = _ => new GenerationSettings { Seed = 3 } });
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Equal(5, response.Usage.AdditionalCounts![CllmChatClient.ForwardPassesCount]); // one token a pass: AR ran
        var chat = await client.GetResponseAsync("hi", new ChatOptions { MaxOutputTokens = 3, RawRepresentationFactory = _ => new GenerationSettings() });
        Assert.Equal(3, chat.Usage!.OutputTokenCount);
    }
}
