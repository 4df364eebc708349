using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend;

public static class ClaudeBackendServiceCollectionExtensions
{
    /// <summary>Registers the claude backend: the CLI launcher, the model catalog, the conversation store and the handler.</summary>
    public static IServiceCollection AddClaudeBackend(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ClaudeBackendOptions>()
            .Bind(configuration)
            .Validate(o => o.Models.Select(m => m.Name).Distinct(StringComparer.OrdinalIgnoreCase).Count() == o.Models.Count,
                "Claude model names must be unique.")
            .PostConfigure(o => o.DataDirectory = Path.GetFullPath(o.DataDirectory is { Length: > 0 } configured
                ? configured
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "claudeproxy")))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClaudeBackendOptions>, ClaudeBackendOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ClaudeCliMetrics>();
        services.TryAddSingleton<ClaudeCliEnvironment>();
        services.TryAddSingleton<ClaudeCliLedger>();
        services.TryAddSingleton<ClaudeCliProbe>();
        services.TryAddSingleton<CliWrapClaudeLauncher>();
        services.TryAddSingleton<WarmSpares>();
        services.TryAddSingleton<KeptProcesses>();
        services.TryAddSingleton<ClaudeProcessPool>();
        services.TryAddSingleton<IClaudeCliLauncher>(provider => provider.GetRequiredService<ClaudeProcessPool>());
        services.TryAddSingleton<IClaudeLoadedProcesses>(provider => provider.GetRequiredService<ClaudeProcessPool>());
        services.TryAddSingleton<ClaudeModelCatalog>();
        services.TryAddSingleton<ConversationStore>();
        services.AddSingleton<IValidateOptions<ClaudeBackendOptions>, RedisConfigurationValidator>();
        services.TryAddSharedOrLocal<ISharedConversationHistory, RedisConversationHistory, NoSharedConversationHistory>();
        services.TryAddSingleton<IClaudeBackend, ClaudeCliBackend>();
        services.TryAddSingleton<ClaudeBackendHandler>();
        services.TryAddSingleton<ConversationRetention>();
        services.AddHostedService<ClaudeBackendLifetime>();
        return services;
    }

    /// <summary>
    /// Adds <typeparamref name="TService"/> as <typeparamref name="TShared"/> when the backend has a Redis
    /// (<see cref="ClaudeBackendOptions.Redis"/>), which every gateway and worker before it then shares, and as
    /// <typeparamref name="TLocal"/>, this process's own, otherwise.
    /// </summary>
    public static IServiceCollection TryAddSharedOrLocal<TService, TShared, TLocal>(this IServiceCollection services)
        where TService : class
        where TShared : TService
        where TLocal : TService
    {
        services.TryAddSingleton<SharedRedis>();
        services.TryAddSingleton<TService>(provider => provider.GetRequiredService<SharedRedis>().IsConfigured
            ? ActivatorUtilities.CreateInstance<TShared>(provider)
            : ActivatorUtilities.CreateInstance<TLocal>(provider));
        return services;
    }
}
