using Cllm;
using Cllm.Extensions.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.SemanticKernel.ChatCompletion;

namespace Microsoft.SemanticKernel;

/// <summary>
/// Semantic Kernel registration. Both the <see cref="IChatClient"/> (with kernel function invocation, which
/// <c>FunctionChoiceBehavior.Auto()</c> needs) and an <see cref="IChatCompletionService"/> over it are
/// registered: with only the chat client, <c>GetService&lt;IChatCompletionService&gt;()</c> finds nothing.
/// </summary>
public static class CllmKernelBuilderExtensions
{
    /// <summary>A client that loads <paramref name="options"/>' model (owned by the kernel's services).</summary>
    public static IKernelBuilder AddCllmChatClient(this IKernelBuilder builder, CllmChatClientOptions options, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        return builder.AddCllmChatClient(_ => new CllmChatClient(options), serviceId);
    }

    /// <summary>A client over an engine the caller owns, e.g. one shared with other clients.</summary>
    public static IKernelBuilder AddCllmChatClient(this IKernelBuilder builder, CllmEngine engine, CllmChatClientOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(engine);
        return builder.AddCllmChatClient(_ => new CllmChatClient(engine, options), serviceId);
    }

    static IKernelBuilder AddCllmChatClient(this IKernelBuilder builder, Func<IServiceProvider, CllmChatClient> create, string? serviceId)
    {
        builder.Services.AddKeyedSingleton<IChatClient>(serviceId, (sp, _) =>
        {
            var loggerFactory = sp.GetService<ILoggerFactory>();
            return create(sp).AsBuilder().UseKernelFunctionInvocation(loggerFactory).Build(sp);
        });
        builder.Services.AddKeyedSingleton<IChatCompletionService>(serviceId, (sp, _) =>
            sp.GetRequiredKeyedService<IChatClient>(serviceId).AsChatCompletionService(sp));
        return builder;
    }
}
