using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms.Yarp;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>
/// The two sides of running Claude turns on other machines. A worker (<c>CLAUDEPROXY_ROLE=worker</c>) serves the
/// backend's contract, <c>POST /v1/turns</c>, through YARP to its in-process destination. A gateway with workers
/// (<c>CLAUDEPROXY_WORKERS</c>) makes them the destinations of its <c>claude</c> cluster, health-checked, with each
/// conversation sent to the same worker (<see cref="ConversationHashPolicy"/>).
/// </summary>
internal static class ClaudeWorkers
{
    public const string ClusterId = "claude";

    /// <summary>A worker's one route: the contract's path, to the in-process claude backend.</summary>
    public static IReadOnlyList<RouteConfig> WorkerRoutes { get; } =
    [
        new RouteConfig
        {
            RouteId = "turns",
            ClusterId = ClusterId,
            Match = new RouteMatch { Path = ClaudeBackendPaths.Turns, Methods = ["POST"] },
        },
    ];

    /// <summary>A worker's claude cluster: the in-process backend, which answers as long as a turn runs.</summary>
    public static ClusterConfig WorkerCluster { get; } = new()
    {
        ClusterId = ClusterId,
        Metadata = new Dictionary<string, string> { [ClaudeTransformProvider.BackendMetadataKey] = ClaudeTransformProvider.ClaudeBackendName },
        HttpRequest = new Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromMinutes(30) },
        Destinations = new Dictionary<string, DestinationConfig> { ["cli"] = new() { Address = "http://claude.local/" } },
    };
}

/// <summary>
/// With <see cref="GatewayOptions.Workers"/>, the <c>claude</c> cluster's destinations are the workers: active health
/// checks on their <c>/readyz</c>, passive ones on failed requests, and conversation affinity.
/// </summary>
internal sealed class ClaudeWorkersConfigFilter(IOptions<GatewayOptions> options) : IProxyConfigFilter
{
    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
    {
        var workers = options.Value.Workers;
        if (cluster.ClusterId != ClaudeWorkers.ClusterId || workers.Count == 0)
        {
            return ValueTask.FromResult(cluster);
        }

        return ValueTask.FromResult(cluster with
        {
            Destinations = workers.Select((address, i) => (Id: $"worker-{i}", Address: address))
                .ToDictionary(w => w.Id, w => new DestinationConfig { Address = w.Address }),
            LoadBalancingPolicy = ConversationHashPolicy.PolicyName,
            HealthCheck = new HealthCheckConfig
            {
                Active = new ActiveHealthCheckConfig
                {
                    Enabled = true,
                    Interval = TimeSpan.FromSeconds(5),
                    // Above the worker's own check of its CLI (--version, up to 10 s on a loaded machine).
                    Timeout = TimeSpan.FromSeconds(15),
                    Path = "/readyz",
                    // Consecutive failures, and each worker's load from its answer.
                    Policy = WorkerLoadHealthPolicy.PolicyName,
                },
                Passive = new PassiveHealthCheckConfig
                {
                    Enabled = true,
                    Policy = HealthCheckConstants.PassivePolicy.TransportFailureRate,
                    // YARP never reactivates sooner than the policy's detection window (60 s): said as it is.
                    ReactivationPeriod = TimeSpan.FromMinutes(1),
                },
            },
        });
    }

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel) =>
        ValueTask.FromResult(route);
}
