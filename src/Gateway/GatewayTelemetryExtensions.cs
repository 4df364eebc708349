using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Transforms.Telemetry;
using OpenTelemetry.Metrics;

namespace ClaudeProxy.Gateway;

public static class GatewayTelemetryExtensions
{
    /// <summary>Prometheus metrics at <c>/metrics</c>: the GenAI conventions, the CLI's costs, ASP.NET Core's, Kestrel's and the runtime's meters.</summary>
    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<GenAiMetrics>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(GenAiMetrics.MeterName, ClaudeCliMetrics.MeterName)
            .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Routing", "System.Net.Http")
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
