using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests;

/// <summary>Overload, silence and refusals: every one ends in a clear answer in the client's dialect, never a hang.</summary>
public sealed class ClaudeLimitsTests
{
    private const string Chat = """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static string Partial => Fixtures.StdoutPath("print_stream_json_partial");

    private static async Task<(HttpResponseMessage Response, StreamReader Body)> OpenStreamAsync(HttpClient client, string path, CancellationToken cancellationToken)
    {
        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(Chat) }, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        return (response, new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken)));
    }

    /// <summary>Turns waiting for a process: +1 as each enters the queue, -1 as it leaves (started, refused or gone).</summary>
    private static MetricCollector<long> QueuedTurns(GatewayApp app) =>
        new(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.requests.queued");

    [Fact]
    public async Task Beyond_the_process_cap_turns_wait_in_a_bounded_queue_and_the_rest_hear_server_busy()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Partial};hang-after=6", configure: s =>
        {
            s["ClaudeBackend:MaxConcurrentProcesses"] = "1";
            s["ClaudeBackend:MaxQueuedTurns"] = "1";
            s["ClaudeBackend:QueueTimeout"] = "00:00:01";
        });
        using var waiting = QueuedTurns(app);
        var client = app.CreateClient();
        var (running, runningBody) = await OpenStreamAsync(client, "/api/chat", Cancel);
        Assert.NotNull(await runningBody.ReadLineAsync(Cancel));

        var queued = client.PostAsync("/api/chat", Json(Chat), Cancel);
        // The running turn went in and out of the queue; the next one is in it now.
        await waiting.WaitForMeasurementsAsync(3, Cancel);
        using var refused = await client.PostAsync("/v1/chat/completions", Json(Chat), Cancel);
        using var timedOut = await queued;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal("busy", (await refused.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, timedOut.StatusCode);
        Assert.Equal("server busy, please try again.  maximum pending requests exceeded", (await timedOut.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
        Assert.Single(File.ReadAllLines(app.FakeCliLog));
        running.Dispose();
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_queued_turn_whose_client_leaves_never_starts()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Partial};delay-ms=150", configure: s => s["ClaudeBackend:MaxConcurrentProcesses"] = "1");
        using var queued = QueuedTurns(app);
        var client = app.CreateClient();
        var first = client.PostAsync("/api/chat", Json(Chat), Cancel);
        await queued.WaitForMeasurementsAsync(2, Cancel);

        using var leave = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var second = client.PostAsync("/api/chat", Json(Chat), leave.Token);
        await queued.WaitForMeasurementsAsync(3, Cancel);
        await leave.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second);
        using var firstResponse = await first;
        await queued.WaitForMeasurementsAsync(4, Cancel);

        Assert.Equal(HttpStatusCode.OK, firstResponse.StatusCode);
        Assert.Single(File.ReadAllLines(app.FakeCliLog));
        Assert.Equal(0, queued.GetMeasurementSnapshot().Sum(m => m.Value));
    }

    [Fact]
    public async Task A_cli_that_never_starts_answering_is_stopped_and_the_client_told()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Partial};hang-after=2", configure: s => s["ClaudeBackend:FirstAnswerTimeout"] = "00:00:01");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json(Chat), Cancel);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("did not start answering within 1 s", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_kept_conversation_whose_cli_never_starts_answering_times_out_too_and_a_cli_deaf_to_the_interrupt_is_killed()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Partial};hang-after=2;ignore-interrupt", configure: s => s["ClaudeBackend:FirstAnswerTimeout"] = "00:00:01");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        limit.CancelAfter(TimeSpan.FromSeconds(15));

        using var response = await app.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"kept","messages":[{"role":"user","content":"x"}]}"""), limit.Token);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_cli_that_falls_silent_mid_answer_is_stopped_and_the_stream_ends_with_an_error()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Partial};hang-after=6", configure: s => s["ClaudeBackend:IdleTimeout"] = "00:00:01");

        var (_, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/v1/chat/completions", Json("""{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        var error = lines.SseData()[^1].GetProperty("error");
        Assert.Contains("silent for 1 s", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("timeout", error.GetProperty("code").GetString());
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_usage_limit_is_a_429_with_the_time_until_it_resets()
    {
        var replay = Path.GetTempFileName();
        var resets = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        await File.WriteAllTextAsync(replay, $$"""{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|{{resets}}"}""" + "\n", Cancel);
        await using var app = GatewayApp.WithFakeCli($"replay={replay};exit-code=1");

        using var response = await app.CreateClient().PostAsync("/v1/chat/completions", Json(Chat), Cancel);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.InRange(response.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 3500, 3600);
        Assert.Equal("rate_limit_error", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_lost_login_shows_in_readyz_until_a_turn_succeeds_again()
    {
        var replay = Path.GetTempFileName();
        File.Copy(Fixtures.StdoutPath("error_401_stream_json"), replay, overwrite: true);
        await using var app = GatewayApp.WithFakeCli($"replay={replay}");
        var client = app.CreateClient();

        using var unauthorized = await client.PostAsync("/api/chat", Json(Chat), Cancel);
        using var notReady = await client.GetAsync("/readyz", Cancel);
        File.Copy(Partial, replay, overwrite: true);
        using var ok = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);
        using var ready = await client.GetAsync("/readyz", Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        var claude = (await notReady.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("backends").GetProperty("claude");
        Assert.False(claude.GetProperty("ready").GetBoolean());
        Assert.Contains("failed to authenticate", claude.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
