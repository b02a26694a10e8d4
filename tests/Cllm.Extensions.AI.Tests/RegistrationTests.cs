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
        var config = Config(("Cllm:ModelPath", TestModels.Random), ("Cllm:Defaults:Decoder", "ar"), ("Cllm:Defaults:BlockSize", "8"),
            ("Cllm:Defaults:MaxNewTokens", "6"), ("Cllm:ModelId", "random-tiny"), ("Cllm:ChatFormat", "chatml"),
            ("Cllm:Engine:ContextLength", "128"), ("Cllm:Engine:QueueTimeout", "00:01:00"));
        var services = new ServiceCollection();
        var builder = services.AddCllmChatClient(config.GetSection("Cllm"));
        Assert.IsType<ChatClientBuilder>(builder);
        builder.UseFunctionInvocation();

        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        Assert.IsType<FunctionInvokingChatClient>(client); // the first Use is the outermost layer
        var cllm = client.GetService<CllmChatClient>()!;
        var options = cllm.GetService<CllmChatClientOptions>()!;
        Assert.Equal(Decoding.DecoderKind.Autoregressive, options.Defaults.Decoder);
        Assert.Equal(8, options.Defaults.BlockSize);
        Assert.Equal(128, cllm.Engine.ContextLength);
        Assert.Equal(TimeSpan.FromMinutes(1), cllm.Engine.Options.QueueTimeout);
        Assert.Equal("chatml", cllm.ChatFormat.Name);
        Assert.Equal("random-tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);

        var response = await client.GetResponseAsync("hello");
        Assert.Equal(6, response.Usage!.OutputTokenCount);
        Assert.Equal("random-tiny", response.ModelId);
    }

    [Fact]
    public async Task LookaheadAndItsPoolSettingsBindFromConfiguration()
    {
        var config = Config(("Cllm:ModelPath", TestModels.Random), ("Cllm:Defaults:Decoder", "Lookahead"), ("Cllm:Defaults:NgramSize", "3"),
            ("Cllm:Defaults:NgramsPerKey", "2"), ("Cllm:Engine:KeepNgramPool", "false"), ("Cllm:Defaults:MaxNewTokens", "12"),
            ("Cllm:ChatFormat", "cllm"), ("Cllm:NgramPoolScope", "Conversation"));
        var services = new ServiceCollection();
        services.AddCllmChatClient(config.GetSection("Cllm"));
        await using var provider = services.BuildServiceProvider();
        var cllm = provider.GetRequiredService<IChatClient>().GetService<CllmChatClient>()!;
        var options = cllm.GetService<CllmChatClientOptions>()!;
        Assert.Equal(Decoding.DecoderKind.Lookahead, options.Defaults.Decoder);
        Assert.Equal((3, 2, false), (options.Defaults.NgramSize, options.Defaults.NgramsPerKey, options.Engine.KeepNgramPool));
        Assert.Equal(NgramPoolScope.Conversation, options.NgramPoolScope);
        Assert.False(cllm.Engine.Options.KeepNgramPool);

        // Lossless: the lookahead answer is the autoregressive one.
        var lookahead = await cllm.GetResponseAsync("hello");
        var ar = await cllm.GetResponseAsync("hello", new ChatOptions
        {
            RawRepresentationFactory = _ => new Decoding.GenerationSettings { Decoder = Decoding.DecoderKind.Autoregressive },
        });
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

    [Theory]
    [InlineData(ServiceLifetime.Singleton)]
    [InlineData(ServiceLifetime.Scoped)]
    [InlineData(ServiceLifetime.Transient)]
    public async Task ClientsOfAnyLifetimeShareOneEngine(ServiceLifetime lifetime)
    {
        var services = new ServiceCollection();
        services.AddCllmChatClient(new CllmChatClientOptions { ModelPath = TestModels.Random, ChatFormat = "cllm" }, lifetime);
        await using var provider = services.BuildServiceProvider();
        CllmEngine Engine(IServiceProvider sp) => sp.GetRequiredService<IChatClient>().GetService<CllmEngine>()!;
        var first = Engine(provider);
        using (var scope = provider.CreateScope())
        {
            Assert.Same(first, Engine(scope.ServiceProvider));
            Assert.Same(first, Engine(scope.ServiceProvider));
        }

        Assert.Same(first, provider.GetRequiredService<CllmEngine>());
        Assert.NotEmpty((await provider.GetRequiredService<IChatClient>().GetResponseAsync("hi", new() { MaxOutputTokens = 3 })).Text);
    }

    [Fact]
    public void BadConfigurationIsNamed()
    {
        var e = Assert.Throws<InvalidOperationException>(() => CllmServiceCollectionExtensions.Bind(
            Config(("Cllm:ModelPath", "m"), ("Cllm:Defaults:Decoder", "fast")).GetSection("Cllm")));
        Assert.Contains("Cllm:Defaults:Decoder", e.ToString());
        Assert.Contains("ar (autoregressive), jacobi or lookahead", e.ToString());
        var unknown = Assert.Throws<InvalidOperationException>(() => CllmServiceCollectionExtensions.Bind(
            Config(("Cllm:ModelPath", "m"), ("Cllm:Decoder", "ar")).GetSection("Cllm")));
        Assert.Contains("Decoder", unknown.Message); // settings live under Defaults now; a flat key is an error, not ignored
        foreach (var name in new[] { "ar", "AR", "autoregressive", "Jacobi", "lookahead" })
            Assert.NotNull(CllmServiceCollectionExtensions.Bind(Config(("ModelPath", "m"), ("Defaults:Decoder", name))).Defaults.Decoder);
    }

    [Fact]
    public void AMissingModelPathIsNamed()
    {
        var services = new ServiceCollection();
        var e = Assert.Throws<InvalidOperationException>(() => services.AddCllmChatClient(Config(("Cllm:ChatFormat", "cllm")).GetSection("Cllm")));
        Assert.Contains("Cllm:ModelPath", e.Message);
        Assert.Throws<ArgumentException>(() => new CllmChatClient(new CllmChatClientOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CllmChatClient(new CllmChatClientOptions
        {
            ModelPath = TestModels.Random, Engine = new() { ContextLength = 1 },
        }));
    }
}
