using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Transforms.Telemetry;
using OpenTelemetry.Metrics;

namespace ClaudeProxy.Gateway;

public static class GatewayTelemetryExtensions
{
    /// <summary>Prometheus metrics at <c>/metrics</c>: the GenAI conventions, the CLI's costs, ASP.NET Core's and Kestrel's meters.</summary>
    public static WebApplicationBuilder AddGatewayTelemetry(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<GenAiMetrics>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(GenAiMetrics.MeterName, ClaudeCliMetrics.MeterName)
            .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Routing", "System.Net.Http")
            .AddPrometheusExporter());
        return builder;
    }
}
