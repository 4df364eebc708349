using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace ClaudeProxy.Gateway.Ollama;

/// <summary>
/// The Ollama behind the gateway, for the few answers the gateway composes itself (model lists, version). Requests go
/// through the <c>ollama</c> cluster's own client to a destination YARP's health checks consider available.
/// </summary>
internal sealed partial class OllamaUpstream(IProxyStateLookup proxyState, IOptions<GatewayOptions> options, ILogger<OllamaUpstream> logger)
{
    /// <summary>Whether any Ollama destination is configured.</summary>
    public bool IsConfigured =>
        proxyState.TryGetCluster(OllamaClusterConfigFilter.ClusterId, out var cluster) && !cluster.Destinations.IsEmpty;

    /// <summary>The body of a GET to Ollama, or null when it is off, down, slow or answers an error.</summary>
    public async Task<byte[]?> GetAsync(string path, CancellationToken cancellationToken)
    {
        if (!proxyState.TryGetCluster(OllamaClusterConfigFilter.ClusterId, out var cluster)
            || cluster.Model.HttpClient is not { } client
            || cluster.DestinationsState.AvailableDestinations.FirstOrDefault() is not { } destination)
        {
            return null;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.OllamaListTimeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(destination.Model.Config.Address), path));
            using var response = await client.SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                LogUpstreamFailed(logger, path, $"status {(int)response.StatusCode}");
                return null;
            }

            return await response.Content.ReadAsByteArrayAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogUpstreamFailed(logger, path, $"no answer within {options.Value.OllamaListTimeout.TotalSeconds:0.##} s");
            return null;
        }
        catch (HttpRequestException exception)
        {
            LogUpstreamFailed(logger, path, exception.Message);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ollama GET {Path} failed ({Reason}); answering without it")]
    private static partial void LogUpstreamFailed(ILogger logger, string path, string reason);
}
