using System.Globalization;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Telemetry;

/// <summary>A real Prometheus scrapes the gateway while the real CLI and a fake Ollama serve traffic.</summary>
public sealed class PrometheusMetricsTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static double Value(JsonElement series) => double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Prometheus_sees_tokens_durations_and_first_token_times_for_both_backends()
    {
        PrometheusServer.EnsureInstalled();
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        using var ollama = FakeOllama.Start();
        await using var app = GatewayApp.WithRealCli(api, kestrel: true, configure: settings =>
        {
            GatewayApp.WithOllama(ollama.Url)(settings);
            settings["Gateway:HttpMetrics"] = "true";
        });
        using var client = app.CreateClient();
        await using var prometheus = await PrometheusServer.StartAsync(client.BaseAddress!);

        var (claude, claudeLines) = await PostAndReadLinesAsync(client, "/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"count my tokens"}]}"""), Cancel);
        // A model name of this test's own: the OpenTelemetry SDK listens to meters by name across the whole process,
        // so other tests' gateways, running at the same time, are seen in this one's metrics too.
        var (local, localLines) = await PostAndReadLinesAsync(client, "/api/chat", Json("""{"model":"prometheus-probe:latest","messages":[{"role":"user","content":"why is the sky blue?"}]}"""), Cancel);
        Assert.True(claude.IsSuccessStatusCode, $"claude: {(int)claude.StatusCode} {string.Join("\n", claudeLines.Select(l => l.Text))}");
        Assert.True(local.IsSuccessStatusCode, $"ollama: {(int)local.StatusCode} {string.Join("\n", localLines.Select(l => l.Text))}");

        var timeout = TimeSpan.FromSeconds(20);
        var claudeInput = await prometheus.WaitForSeriesAsync(
            """gen_ai_client_token_usage_sum{gen_ai_provider_name="anthropic",gen_ai_token_type="input",gen_ai_operation_name="chat",gen_ai_request_model="claude-sonnet:latest",gen_ai_response_model="claude-sonnet-5"} > 100""", timeout);
        Assert.True(claudeInput.Count > 0, "the CLI's real input token count (system prompt included) for claude-sonnet:latest answered by claude-sonnet-5");
        var ollamaOutput = await prometheus.WaitForSeriesAsync(
            """sum(gen_ai_client_token_usage_sum{gen_ai_provider_name="ollama",gen_ai_token_type="output",gen_ai_request_model="prometheus-probe:latest"})""", timeout);
        Assert.True(ollamaOutput.Count == 1 && Value(ollamaOutput[0]) == 15, string.Join(" ", ollamaOutput));
        var ollamaInput = await prometheus.WaitForSeriesAsync("""sum(gen_ai_client_token_usage_sum{gen_ai_provider_name="ollama",gen_ai_token_type="input",gen_ai_request_model="prometheus-probe:latest"})""", timeout);
        Assert.True(ollamaInput.Count == 1 && Value(ollamaInput[0]) == 169, string.Join(" ", ollamaInput));
        foreach (var provider in (string[])["anthropic", "ollama"])
        {
            Assert.NotEmpty(await prometheus.WaitForSeriesAsync($$"""gen_ai_server_request_duration_seconds_count{gen_ai_provider_name="{{provider}}"} > 0""", timeout));
            Assert.NotEmpty(await prometheus.WaitForSeriesAsync($$"""gen_ai_server_time_to_first_token_seconds_count{gen_ai_provider_name="{{provider}}"} > 0""", timeout));
            Assert.NotEmpty(await prometheus.WaitForSeriesAsync($$"""gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name="{{provider}}"} > 0""", timeout));
        }

        Assert.NotEmpty(await prometheus.WaitForSeriesAsync("""claudeproxy_cost_usd_total{gen_ai_request_model="claude-sonnet:latest"} > 0""", timeout));
        Assert.NotEmpty(await prometheus.WaitForSeriesAsync("""claudeproxy_cli_start_duration_seconds_count > 0""", timeout));
        Assert.NotEmpty(await prometheus.WaitForSeriesAsync("""http_server_request_duration_seconds_count{http_route="/api/chat"}""", timeout));

        var (exitCode, output) = await PrometheusServer.CheckMetricsAsync(await client.GetStringAsync("/metrics", Cancel));
        Assert.True(exitCode == 0, output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ASP_NET_Cores_per_request_meters_are_exported_only_when_asked_for(bool httpMetrics)
    {
        using var ollama = FakeOllama.Start();
        await using var app = GatewayApp.WithFakeCli(configure: settings =>
        {
            GatewayApp.WithOllama(ollama.Url)(settings);
            settings["Gateway:HttpMetrics"] = httpMetrics ? "true" : "false";
        });
        using var client = app.CreateClient();

        var (response, _) = await PostAndReadLinesAsync(client, "/api/chat", Json("""{"model":"llama3.2:latest","messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        Assert.True(response.IsSuccessStatusCode);

        var metrics = await client.GetStringAsync("/metrics", Cancel);
        // The GenAI metrics time the request either way; ASP.NET Core's and HttpClient's own only when asked for.
        Assert.Contains("gen_ai_server_request_duration_seconds_count", metrics);
        Assert.Equal(httpMetrics, metrics.Contains("http_server_request_duration_seconds_count", StringComparison.Ordinal));
        Assert.Equal(httpMetrics, metrics.Contains("http_client_request_duration_seconds_count", StringComparison.Ordinal));
    }
}
