using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Transforms.Telemetry;
using OpenTelemetry.Metrics;

namespace ClaudeProxy.Gateway;

public static class GatewayTelemetryExtensions
{
    /// <summary>The framework's meters that record every request; exported only with <see cref="GatewayOptions.HttpMetrics"/>.</summary>
    private static readonly string[] PerRequestMeters = ["Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Routing", "System.Net.Http"];

    /// <summary>
    /// Prometheus metrics at <c>/metrics</c>: the GenAI conventions, the CLI's costs, Kestrel's connections and the
    /// runtime's meters; ASP.NET Core's per-request meters when <paramref name="httpMetrics"/> asks for them.
    /// </summary>
    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder, bool httpMetrics)
    {
        builder.Services.AddSingleton<GenAiMetrics>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(GenAiMetrics.MeterName, ClaudeCliMetrics.MeterName)
            .AddMeter("Microsoft.AspNetCore.Server.Kestrel")
            .AddMeter(httpMetrics ? PerRequestMeters : [])
            // The runtime's own: GC heap, working set, thread pool, so the gateway's memory is in view too. Three of its
            // gauges end in "_count", which Prometheus keeps for histograms (promtool rejects them); they are left out.
            .AddMeter("System.Runtime")
            .AddView("dotnet.assembly.count", MetricStreamConfiguration.Drop)
            .AddView("dotnet.process.cpu.count", MetricStreamConfiguration.Drop)
            .AddView("dotnet.timer.count", MetricStreamConfiguration.Drop)
            .AddPrometheusExporter());
        return builder;
    }
}
