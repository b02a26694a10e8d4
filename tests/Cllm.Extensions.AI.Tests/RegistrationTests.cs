using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Cllm.Extensions.AI.Tests;

public sealed class RegistrationTests
{
    static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value))).Build();

    [Fact]
    public async Task AddCllmChatClientBindsAConfigurationSectionAndReturnsTheBuilder()
    {
        var config = Config(("Cllm:ModelPath", TestModels.Random), ("Cllm:Decoder", "Autoregressive"), ("Cllm:BlockSize", "8"),
            ("Cllm:MaxOutputTokens", "6"), ("Cllm:ModelId", "random-tiny"), ("Cllm:ChatFormat", "chatml"));
        var services = new ServiceCollection();
        var builder = services.AddCllmChatClient(config.GetSection("Cllm"));
        Assert.IsType<ChatClientBuilder>(builder);
        builder.UseFunctionInvocation();

        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        Assert.IsType<FunctionInvokingChatClient>(client); // the first Use is the outermost layer
        var cllm = client.GetService<CllmChatClient>()!;
        var options = cllm.GetService<CllmChatClientOptions>()!;
        Assert.Equal(Decoding.DecoderKind.Autoregressive, options.Decoder);
        Assert.Equal(8, options.BlockSize);
        Assert.Equal("chatml", cllm.ChatFormat.Name);
        Assert.Equal("random-tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);

        var response = await client.GetResponseAsync("hello");
        Assert.Equal(6, response.Usage!.OutputTokenCount);
        Assert.Equal("random-tiny", response.ModelId);
    }

    [Fact]
    public async Task LookaheadAndItsPoolSettingsBindFromConfiguration()
    {
        var config = Config(("Cllm:ModelPath", TestModels.Random), ("Cllm:Decoder", "Lookahead"), ("Cllm:NgramSize", "3"),
            ("Cllm:NgramsPerKey", "2"), ("Cllm:KeepNgramPool", "false"), ("Cllm:MaxOutputTokens", "12"), ("Cllm:ChatFormat", "cllm"));
        var services = new ServiceCollection();
        services.AddCllmChatClient(config.GetSection("Cllm"));
        await using var provider = services.BuildServiceProvider();
        var cllm = provider.GetRequiredService<IChatClient>().GetService<CllmChatClient>()!;
        var options = cllm.GetService<CllmChatClientOptions>()!;
        Assert.Equal(Decoding.DecoderKind.Lookahead, options.Decoder);
        Assert.Equal((3, 2, false), (options.NgramSize, options.NgramsPerKey, options.KeepNgramPool));
        Assert.False(cllm.Engine.Options.KeepNgramPool);

        // Lossless: the lookahead answer is the autoregressive one.
        var lookahead = await cllm.GetResponseAsync("hello");
        var ar = await cllm.GetResponseAsync("hello", new ChatOptions { AdditionalProperties = new() { [CllmChatClient.DecoderKey] = "ar" } });
        Assert.Equal(ar.Text, lookahead.Text);
        Assert.Equal(12, lookahead.Usage!.OutputTokenCount);
        // Every token comes from a pass (the prefill makes the first) or was a guess a pass accepted; pooled
        // n-grams are some of the accepted guesses.
        var counts = lookahead.Usage.AdditionalCounts!;
        Assert.Equal(12, counts[CllmChatClient.ForwardPassesCount] + counts[CllmChatClient.FastForwardedTokensCount]);
        Assert.InRange(counts[CllmChatClient.PooledTokensCount], 0, counts[CllmChatClient.FastForwardedTokensCount]);
    }

    [Fact]
    public async Task KeyedClientsAreSeparate()
    {
        var services = new ServiceCollection();
        services.AddKeyedCllmChatClient("a", new CllmChatClientOptions { ModelPath = TestModels.Random, ModelId = "a" });
        services.AddKeyedCllmChatClient("b", Config(("ModelPath", TestModels.Random), ("ModelId", "b")));
        await using var provider = services.BuildServiceProvider();
        Assert.Equal("a", provider.GetRequiredKeyedService<IChatClient>("a").GetService<ChatClientMetadata>()!.DefaultModelId);
        Assert.Equal("b", provider.GetRequiredKeyedService<IChatClient>("b").GetService<ChatClientMetadata>()!.DefaultModelId);
        Assert.Null(provider.GetService<IChatClient>());
    }

    [Fact]
    public void AMissingModelPathIsNamed()
    {
        var services = new ServiceCollection();
        services.AddCllmChatClient(Config(("Cllm:Decoder", "Jacobi")).GetSection("Cllm"));
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IChatClient>());
        Assert.Contains("Cllm:ModelPath", e.Message);
        Assert.Throws<ArgumentException>(() => new CllmChatClient(new CllmChatClientOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Random, BlockSize = 1 }));
    }
}
