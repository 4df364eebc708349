using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.Telemetry;

namespace ClaudeProxy.Gateway.Tests.Budgets;

/// <summary>
/// A subscription login's rate limits, with the real CLI logged in by token (<c>CLAUDE_CODE_OAUTH_TOKEN</c>) and the fake
/// API sending the <c>anthropic-ratelimit-unified-*</c> headers the CLI reports them from (tests/Fixtures/rate_limits).
/// </summary>
public sealed class RateLimitTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// <summary>Logs the CLI in as a subscriber: a token, and no API key (an empty one counts as none).</summary>
    private static void AsSubscriber(Dictionary<string, string?> settings)
    {
        settings["ClaudeBackend:Environment:ANTHROPIC_API_KEY"] = "";
        settings["ClaudeBackend:Environment:CLAUDE_CODE_OAUTH_TOKEN"] = "fake-oauth-token";
    }

    [Fact]
    public async Task A_window_near_its_limit_shows_in_usage_and_in_the_metrics_with_its_utilization_and_reset()
    {
        var resets = DateTimeOffset.UtcNow.AddHours(3).ToUnixTimeSeconds();
        await using var api = await FakeAnthropicServer.StartWithHeadersAsync(new Dictionary<string, string>
        {
            ["anthropic-ratelimit-unified-status"] = "allowed",
            ["anthropic-ratelimit-unified-reset"] = $"{resets}",
            ["anthropic-ratelimit-unified-5h-utilization"] = "0.93",
            ["anthropic-ratelimit-unified-5h-reset"] = $"{resets}",
            ["anthropic-ratelimit-unified-5h-surpassed-threshold"] = "0.9",
        }, "--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: AsSubscriber);
        using var client = app.CreateClient();

        var before = await client.GetFromJsonAsync<JsonElement>("/api/usage", Cancel);
        // Streamed: the report passes through the streaming path, after the words.
        using var chat = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        var lines = (await chat.Content.ReadAsStringAsync(Cancel)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var usage = await client.GetFromJsonAsync<JsonElement>("/api/usage", Cancel);
        var metrics = await client.GetStringAsync("/metrics", Cancel);

        Assert.Empty(before.GetProperty("rate_limits").EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        Assert.True(JsonDocument.Parse(lines[^1]).RootElement.GetProperty("done").GetBoolean());
        Assert.Equal("hi", string.Concat(lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("message").GetProperty("content").GetString())));
        var limit = Assert.Single(usage.GetProperty("rate_limits").EnumerateArray());
        Assert.Equal("cli", limit.GetProperty("login").GetString());
        Assert.Equal("allowed_warning", limit.GetProperty("status").GetString());
        Assert.Equal("five_hour", limit.GetProperty("window").GetString());
        Assert.Equal(0.93, limit.GetProperty("utilization").GetDouble());
        Assert.Equal(resets, limit.GetProperty("resets_at").GetDateTimeOffset().ToUnixTimeSeconds());
        Assert.False(limit.GetProperty("is_using_overage").GetBoolean());
        // A warning is no limit: Claude models still go to Claude.
        Assert.Equal("allowed", usage.GetProperty("usage_limit").GetProperty("status").GetString());

        var utilization = Assert.Single(app.MeasureNow<double>(GenAiMetrics.MeterName, "claudeproxy.rate_limit.utilization"));
        Assert.Equal((0.93, "cli", "five_hour"), (utilization.Value, utilization.Tags["login"], utilization.Tags["window"]));
        Assert.Equal(resets, Assert.Single(app.MeasureNow<double>(GenAiMetrics.MeterName, "claudeproxy.rate_limit.resets_at")).Value);
        Assert.Equal(["allowed_warning"], app.MeasureNow<int>(GenAiMetrics.MeterName, "claudeproxy.rate_limit.status").Where(m => m.Value == 1).Select(m => m.Tags["status"]));
        Assert.Contains("claudeproxy_rate_limit_utilization{", metrics, StringComparison.Ordinal);
        Assert.Contains("claudeproxy_rate_limit_resets_at_seconds{", metrics, StringComparison.Ordinal);
        Assert.Contains("claudeproxy_rate_limit_status{", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rejected_subscription_sends_claude_requests_to_the_fallback_until_its_window_resets()
    {
        var resets = DateTimeOffset.UtcNow.AddHours(2).ToUnixTimeSeconds();
        await using var api = await FakeAnthropicServer.StartWithHeadersAsync(new Dictionary<string, string>
        {
            ["anthropic-ratelimit-unified-status"] = "rejected",
            ["anthropic-ratelimit-unified-reset"] = $"{resets}",
            ["anthropic-ratelimit-unified-representative-claim"] = "seven_day",
        }, "--reply", "echo", "--fail", "429");
        using var ollama = FakeOllama.Start();
        ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.Zero);
        await using var app = GatewayApp.WithRealCli(api, configure: settings =>
        {
            AsSubscriber(settings);
            GatewayApp.WithOllama(ollama.Url)(settings);
            settings["ClaudeBackend:Models:0:FallbackModel"] = "llama3.2:3b";
        });
        using var client = app.CreateClient();
        const string Chat = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}""";

        using var limited = await client.PostAsync("/api/chat", Json(Chat), Cancel);
        var turns = api.MessageRequests().Count;
        using var fallback = await client.PostAsync("/api/chat", Json(Chat), Cancel);
        var usage = await client.GetFromJsonAsync<JsonElement>("/api/usage", Cancel);

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        // The CLI's message has no reset time ("You've hit your weekly limit"); the report has it, to the second.
        Assert.InRange(limited.Headers.RetryAfter!.Delta!.Value.TotalSeconds, resets - DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, resets - DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        Assert.Equal("llama3.2:3b; reason=usage_limit", fallback.Headers.GetValues("x-claudeproxy-fallback").Single());
        Assert.Equal(turns, api.MessageRequests().Count);
        var limit = Assert.Single(usage.GetProperty("rate_limits").EnumerateArray());
        Assert.Equal(("rejected", "seven_day"), (limit.GetProperty("status").GetString(), limit.GetProperty("window").GetString()));
        Assert.Equal(resets, limit.GetProperty("resets_at").GetDateTimeOffset().ToUnixTimeSeconds());
        Assert.Equal(("rejected", resets), (usage.GetProperty("usage_limit").GetProperty("status").GetString(), usage.GetProperty("usage_limit").GetProperty("resets_at").GetDateTimeOffset().ToUnixTimeSeconds()));
    }
}
