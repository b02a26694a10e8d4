using Cllm;
using Cllm.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers a <see cref="CllmChatClient"/> as the <see cref="IChatClient"/> (add middleware on the returned builder)
/// and its <see cref="CllmEngine"/> once, as a singleton that loads the model on first use. Clients of any lifetime
/// share that engine: a Scoped or Transient client never reloads the weights. Keyed registrations key the engine
/// the same way, so each key has its own model. An engine registered before is used as it is.
/// </summary>
public static class CllmServiceCollectionExtensions
{
    public static ChatClientBuilder AddCllmChatClient(this IServiceCollection services, CllmChatClientOptions options,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton(_ => CllmChatClient.Load(options));
        return services.AddChatClient(sp => new CllmChatClient(sp.GetRequiredService<CllmEngine>(), options), lifetime);
    }

    /// <summary>Options bound from a configuration section (e.g. <c>configuration.GetSection("Cllm")</c>), see <see cref="Bind"/>.</summary>
    public static ChatClientBuilder AddCllmChatClient(this IServiceCollection services, IConfiguration configuration,
        ServiceLifetime lifetime = ServiceLifetime.Singleton) =>
        services.AddCllmChatClient(Bind(configuration ?? throw new ArgumentNullException(nameof(configuration))), lifetime);

    public static ChatClientBuilder AddKeyedCllmChatClient(this IServiceCollection services, object? serviceKey, CllmChatClientOptions options,
        ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddKeyedSingleton(serviceKey, (_, _) => CllmChatClient.Load(options));
        return services.AddKeyedChatClient(serviceKey,
            sp => new CllmChatClient(sp.GetRequiredKeyedService<CllmEngine>(serviceKey), options), lifetime);
    }

    public static ChatClientBuilder AddKeyedCllmChatClient(this IServiceCollection services, object? serviceKey, IConfiguration configuration,
        ServiceLifetime lifetime = ServiceLifetime.Singleton) =>
        services.AddKeyedCllmChatClient(serviceKey, Bind(configuration ?? throw new ArgumentNullException(nameof(configuration))), lifetime);

    /// <summary>
    /// Binds nested configuration (ModelPath, Engine, Defaults, ChatFormat, ModelId, NgramPoolScope) to options.
    /// Decoder names are read by <see cref="Cllm.Decoding.DecoderKinds.Parse"/> ("ar", "jacobi", "lookahead");
    /// a missing ModelPath is an error that names the section.
    /// </summary>
    public static CllmChatClientOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = configuration.Get<CllmChatClientOptions>(o => o.ErrorOnUnknownConfiguration = true) ?? new CllmChatClientOptions();
        if (string.IsNullOrWhiteSpace(options.ModelPath))
        {
            string where = configuration is IConfigurationSection section ? $"'{section.Path}:ModelPath'" : "'ModelPath'";
            throw new InvalidOperationException($"Configuration {where} must name a Cllm model folder.");
        }

        return options;
    }
}
