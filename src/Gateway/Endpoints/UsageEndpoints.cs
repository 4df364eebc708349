using System.Text.Json;
using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Gateway.Budgets;
using ClaudeProxy.Transforms;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary><c>GET /api/usage</c>: what Claude turns cost in the current day, week and month, and the budgets.</summary>
internal static class UsageEndpoints
{
    public static IEndpointRouteBuilder MapUsageEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/usage", async (HttpContext context, ClaudeBudgets budgets, ClaudeUsageLimit usageLimit, IOptions<GatewayOptions> options, CancellationToken cancellationToken) =>
            {
                // With API keys, a key sees its own spend and the budgets it counts against; without, the one user sees all.
                var report = await budgets.ReportAsync(ClaudeCallerClaims.Owner(context.User), everyone: options.Value.ApiKeys.Count == 0, cancellationToken);
                var limitedUntil = usageLimit.LimitedUntil;
                return Results.Json(report with
                {
                    UsageLimit = new UsageLimitState(limitedUntil is null ? ClaudeRateLimit.Allowed : ClaudeRateLimit.Rejected, limitedUntil),
                    RateLimits = usageLimit.RateLimits,
                }, UsageJsonContext.Default.UsageReport);
            })
            .WithSummary("Spend per API key and Claude model in the current day, week and month (UTC), each budget with what is left, the Claude login's usage limit and each login's last reported rate-limit state")
            .WithTags("ClaudeProxy").Produces<UsageReport>();
        return app;
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(UsageReport))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
