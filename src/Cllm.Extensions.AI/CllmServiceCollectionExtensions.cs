using Cllm.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="CllmChatClient"/> as the <see cref="IChatClient"/>; add middleware on the returned builder.</summary>
public static class CllmServiceCollectionExtensions
{
    /// <summary>Registers a client that loads <paramref name="options"/>' model on first use.</summary>
    public static ChatClientBuilder AddCllmChatClient(this IServiceCollection services, CllmChatClientOptions options,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        return services.AddChatClient(sp => Create(sp, options), lifetime);
    }

    /// <summary>Registers a client whose options bind from a configuration section (e.g. <c>configuration.GetSection("Cllm")</c>).</summary>
    public static ChatClientBuilder AddCllmChatClient(this IServiceCollection services, IConfiguration configuration,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return services.AddChatClient(sp => Create(sp, Bind(configuration)), lifetime);
    }

    public static ChatClientBuilder AddKeyedCllmChatClient(this IServiceCollection services, object? serviceKey, CllmChatClientOptions options,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        return services.AddKeyedChatClient(serviceKey, sp => Create(sp, options), lifetime);
    }

    public static ChatClientBuilder AddKeyedCllmChatClient(this IServiceCollection services, object? serviceKey, IConfiguration configuration,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return services.AddKeyedChatClient(serviceKey, sp => Create(sp, Bind(configuration)), lifetime);
    }

    /// <summary>Binds a configuration section to options; a missing ModelPath is an error that names the section.</summary>
    public static CllmChatClientOptions Bind(IConfiguration configuration)
    {
        var options = configuration.Get<CllmChatClientOptions>() ?? new CllmChatClientOptions();
        if (string.IsNullOrWhiteSpace(options.ModelPath))
        {
            string where = configuration is IConfigurationSection section ? $"'{section.Path}:ModelPath'" : "'ModelPath'";
            throw new InvalidOperationException($"Configuration {where} must name a Cllm model folder.");
        }

        return options;
    }

    static CllmChatClient Create(IServiceProvider services, CllmChatClientOptions options) =>
        new(options, services.GetService<ILoggerFactory>());
}
