using System.Text.Json;
using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Gateway.Ollama;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary><c>/healthz</c>: the process is up. <c>/readyz</c>: every configured backend can serve, reported per backend.</summary>
internal static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/healthz", ["GET", "HEAD"], () => Results.Text("ok")).WithSummary("Liveness of the gateway process (HEAD too)").WithTags("Health");
        app.MapGet("/readyz", async (ClaudeCliProbe cli, OllamaUpstream ollama, IOptions<GatewayOptions> options, IProxyStateLookup proxy, Workers.WorkerLoads loads, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var backends = new Dictionary<string, BackendReadiness>
            {
                ["claude"] = options.Value.HasWorkers ? WorkersReadiness(proxy, loads) : await CliReadinessAsync(cli, cancellationToken),
            };
            if (ollama.IsConfigured)
            {
                var version = await ollama.GetAsync("/api/version", cancellationToken);
                backends["ollama"] = version is null
                    ? new BackendReadiness(false, "Ollama did not answer /api/version")
                    : new BackendReadiness(true, System.Text.Encoding.UTF8.GetString(version));
            }

            if (!options.Value.HasWorkers && proxy.TryGetCluster(Workers.ClaudeWorkers.ClusterId, out var claude))
            {
                // The turns this gateway's own CLI runs now (after the checks above, which may take seconds), for
                // whichever fronts probe it: a worker's load.
                response.Headers[Workers.WorkerLoads.Header] = claude.Destinations.Values.Sum(d => d.ConcurrentRequestCount).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            var ready = backends.Values.All(b => b.Ready);
            return Results.Json(new Readiness(ready ? "ready" : "not ready", backends), GatewayJsonContext.Default.Readiness,
                statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        }).WithSummary("Readiness: whether each configured backend (the Claude CLI, Ollama) can serve").WithTags("Health");
        return app;
    }

    private static async Task<BackendReadiness> CliReadinessAsync(ClaudeCliProbe cli, CancellationToken cancellationToken)
    {
        var claude = await cli.CheckAsync(cancellationToken);
        return new BackendReadiness(claude.Ready, claude.Detail);
    }

    /// <summary>
    /// With workers, Claude is ready while one of them is (YARP's health checks of their own <c>/readyz</c>); each one's
    /// load as this front counts it.
    /// </summary>
    private static BackendReadiness WorkersReadiness(IProxyStateLookup proxy, Workers.WorkerLoads loads)
    {
        var destinations = proxy.TryGetCluster(Workers.ClaudeWorkers.ClusterId, out var cluster) ? cluster.Destinations.Values.ToList() : [];
        var healthy = destinations.Count(d => d.Health.Active != DestinationHealth.Unhealthy && d.Health.Passive != DestinationHealth.Unhealthy);
        var running = string.Join(", ", destinations.Select(d => $"{d.DestinationId} {loads.Of(d)}"));
        return new BackendReadiness(healthy > 0, $"{healthy} of {destinations.Count} Claude workers healthy; turns running: {running}");
    }
}

internal sealed record Readiness(string Status, IReadOnlyDictionary<string, BackendReadiness> Backends);

internal sealed record BackendReadiness(bool Ready, string Detail);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Readiness))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, double>>))]
internal sealed partial class GatewayJsonContext : JsonSerializerContext;
