using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace ClaudeProxy.Gateway.Ollama;

/// <summary>Applies <c>OLLAMA_URL</c> to the <c>ollama</c> cluster: one destination at that address, or none at all.</summary>
internal sealed class OllamaClusterConfigFilter(IOptions<GatewayOptions> options) : IProxyConfigFilter
{
    public const string ClusterId = "ollama";

    public ValueTask<ClusterConfig> ConfigureClusterAsync(ClusterConfig cluster, CancellationToken cancel)
    {
        var gateway = options.Value;
        if (cluster.ClusterId != ClusterId || gateway.OllamaUrl is null)
        {
            return ValueTask.FromResult(cluster);
        }

        var destinations = gateway.OllamaDisabled
            ? new Dictionary<string, DestinationConfig>()
            : new Dictionary<string, DestinationConfig> { ["primary"] = new() { Address = gateway.OllamaUrl } };
        return ValueTask.FromResult(cluster with { Destinations = destinations });
    }

    public ValueTask<RouteConfig> ConfigureRouteAsync(RouteConfig route, ClusterConfig? cluster, CancellationToken cancel) =>
        ValueTask.FromResult(route);
}
