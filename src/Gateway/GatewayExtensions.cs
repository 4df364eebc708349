using System.Net;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Gateway.Budgets;
using ClaudeProxy.Gateway.Endpoints;
using ClaudeProxy.Gateway.Ollama;
using ClaudeProxy.Gateway.Security;
using ClaudeProxy.Gateway.Workers;
using Microsoft.Extensions.Options;
using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.Transforms.Yarp;
using Yarp.ReverseProxy.Forwarder;

namespace ClaudeProxy.Gateway;

public static partial class GatewayExtensions
{
    /// <summary>The gateway's routes and clusters, shipped next to the binary; <c>CLAUDEPROXY_CONFIG</c> adds a file of the operator's.</summary>
    private static readonly string ConfigFile = Path.Combine(AppContext.BaseDirectory, "config", "gateway.json");

    /// <summary>Composes the gateway: configuration, listen address, YARP with the claude backend as a destination.</summary>
    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder, int? portArgument = null)
    {
        AddConfiguration(builder.Configuration, portArgument);

        builder.Services.AddOptions<GatewayOptions>()
            .Bind(builder.Configuration.GetSection(GatewayOptions.SectionName))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsDataValidator>();
        builder.Services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();

        var gateway = builder.Configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = gateway.MaxRequestBodyBytes);
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
        {
            var host = IPAddress.TryParse(gateway.Host, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                ? $"[{gateway.Host}]"
                : gateway.Host;
            builder.WebHost.UseUrls($"http://{host}:{gateway.Port}");
        }

        builder.Services.AddClaudeBackend(builder.Configuration.GetSection(ClaudeBackendOptions.SectionName));
        if (gateway.IsWorker)
        {
            // A worker serves only the Claude backend's contract: one route to the in-process destination.
            builder.Services.AddReverseProxy().LoadFromMemory(ClaudeWorkers.WorkerRoutes, [ClaudeWorkers.WorkerCluster]);
        }
        else
        {
            builder.Services.AddReverseProxy()
                .LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"))
                .AddConfigFilter<OllamaClusterConfigFilter>()
                .AddConfigFilter<ClaudeWorkersConfigFilter>()
                .AddClaudeDialects(builder.Configuration.GetSection(Transforms.DialectOptions.SectionName))
                .AddTransforms<OllamaUsageTransformProvider>()
                .AddTransforms<WorkerKeyTransformProvider>();
            builder.Services.AddSingleton<Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy, ConversationHashPolicy>();
            builder.Services.AddSingleton<Yarp.ReverseProxy.Health.IActiveHealthCheckPolicy, WorkerLoadHealthPolicy>();
        }

        if (gateway.HasWorkers)
        {
            builder.Services.TryAddSharedOrLocal<IConversationPlacements, RedisConversationPlacements, LocalConversationPlacements>();

            // Turns cross a socket to the workers as the contract's bytes, and this process starts no CLI of its own.
            builder.Services.PostConfigure<ClaudeBackendOptions>(backend =>
            {
                backend.SerializedHop = true;
                foreach (var model in backend.Models)
                {
                    (model.WarmSpares, model.MaxWarmSpares, model.WarmConversationSpares) = (0, 0, 0);
                }
            });
        }

        builder.Services.TryAddSharedOrLocal<ISpendLedger, RedisSpendLedger, LocalSpendLedger>();
        builder.Services.AddSingleton<WorkerLoads>();
        builder.Services.AddSingleton<ClaudeBudgets>();
        builder.Services.AddSingleton<ClaudeUsageLimit>();
        builder.Services.AddSingleton<OllamaUpstream>();
        builder.Services.AddSingleton<IForwarderHttpClientFactory, ClaudeForwarderHttpClientFactory>();
        builder.AddGatewayTelemetry(gateway.HttpMetrics);
        builder.Services.AddDocs();
        return builder;
    }

    /// <summary>Maps the discovery endpoints and the proxy, with model routing ahead of YARP's forwarder.</summary>
    public static WebApplication MapGateway(this WebApplication app)
    {
        app.UseMiddleware<ErrorEnvelopeMiddleware>();
        app.UseMiddleware<ApiKeyMiddleware>();
        if (app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.IsWorker)
        {
            app.MapGet("/", () => Results.Text("ClaudeProxy worker is running")).ExcludeFromDescription();
            app.MapHealthEndpoints();
            app.MapPrometheusScrapingEndpoint();
            app.MapReverseProxy(proxy =>
            {
                proxy.UseMiddleware<WorkerKeyMiddleware>();
            });
            return app;
        }

        app.MapModelEndpoints();
        app.MapUsageEndpoints();
        app.MapHealthEndpoints();
        app.MapDocs();
        app.MapPrometheusScrapingEndpoint();
        var hasWorkers = app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.HasWorkers;
        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<ModelRoutingMiddleware>();
            if (hasWorkers)
            {
                // Only in front of workers: the Ollama pass-through keeps its pipeline as short as it was.
                proxy.UseMiddleware<ConversationPlacementMiddleware>();
                proxy.UseMiddleware<WorkerRetryMiddleware>();
            }

            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        return app;
    }

    private static void AddConfiguration(ConfigurationManager configuration, int? portArgument)
    {
        // The shipped routes go first so that appsettings, the environment and the command line can override them.
        var shipped = new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource { Path = ConfigFile, Optional = false };
        shipped.ResolveFileProvider();
        configuration.Sources.Insert(0, shipped);
        if (Environment.GetEnvironmentVariable("CLAUDEPROXY_CONFIG") is { Length: > 0 } operatorFile)
        {
            configuration.AddJsonFile(Path.GetFullPath(operatorFile), optional: false);
        }

        // The short variables: HOST, PORT (or a port as first argument), OLLAMA_URL and CLAUDE_CLI.
        var overrides = new Dictionary<string, string?>();
        if (Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } host)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.Host)}"] = host;
        }

        if ((portArgument?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Environment.GetEnvironmentVariable("PORT")) is { Length: > 0 } port)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.Port)}"] = port;
        }

        // OLLAMA_URL= (empty) turns Ollama off, as "none" does.
        if (Environment.GetEnvironmentVariable("OLLAMA_URL") is { } ollamaUrl)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.OllamaUrl)}"] = ollamaUrl.Length == 0 ? "none" : ollamaUrl;
        }

        // CLAUDEPROXY_API_KEYS=key1,key2: each key is named by the start of its digest, so logs never show a key.
        var keys = (Environment.GetEnvironmentVariable("CLAUDEPROXY_API_KEYS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = 0; i < keys.Length; i++)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.ApiKeys)}:{i}:{nameof(ApiKeyOptions.Name)}"] = "key-" + TextDigest.Sha256Hex(keys[i])[..8];
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.ApiKeys)}:{i}:{nameof(ApiKeyOptions.Key)}"] = keys[i];
        }

        if (Environment.GetEnvironmentVariable("CLAUDEPROXY_ALLOW_UNAUTHENTICATED") is { Length: > 0 } allow)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.AllowUnauthenticatedRemote)}"] = allow;
        }

        if (Environment.GetEnvironmentVariable("CLAUDEPROXY_ROLE") is { Length: > 0 } role)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.Role)}"] = role;
        }

        // CLAUDEPROXY_WORKERS=http://a:22434,http://b:22434: the Claude workers behind this gateway.
        var workers = (Environment.GetEnvironmentVariable("CLAUDEPROXY_WORKERS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = 0; i < workers.Length; i++)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.Workers)}:{i}"] = workers[i];
        }

        if (Environment.GetEnvironmentVariable("CLAUDEPROXY_WORKER_KEY") is { Length: > 0 } workerKey)
        {
            overrides[$"{GatewayOptions.SectionName}:{nameof(GatewayOptions.WorkerKey)}"] = workerKey;
        }

        if (Environment.GetEnvironmentVariable("CLAUDEPROXY_REDIS") is { Length: > 0 } redis)
        {
            overrides[$"{ClaudeBackendOptions.SectionName}:{nameof(ClaudeBackendOptions.Redis)}"] = redis;
        }

        if (Environment.GetEnvironmentVariable("CLAUDE_CLI") is { Length: > 0 } cli)
        {
            overrides[$"{ClaudeBackendOptions.SectionName}:{nameof(ClaudeBackendOptions.CliPath)}"] = cli;
        }

        configuration.AddInMemoryCollection(overrides);
    }
}
