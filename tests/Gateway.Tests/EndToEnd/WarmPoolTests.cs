using System.Diagnostics;
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

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>Warm spare processes of the real CLI, waiting for new chats.</summary>
public sealed class WarmPoolTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static async Task<IReadOnlyList<int>> WaitForSparesAsync(GatewayApp app, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var processes = ProcessProbe.FindMarked(app.Marker);
            if (processes.Count >= count || DateTime.UtcNow > deadline)
            {
                return processes;
            }

            await Task.Delay(100, Cancel);
        }
    }

    private static async Task<JsonElement> ChatAsync(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/api/chat", Json(body), Cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var content = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!;
        return JsonDocument.Parse(content).RootElement;
    }

    [Fact]
    public async Task New_chats_take_warm_processes_one_each_with_their_own_system_prompt_and_no_history()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Models:0:WarmSpares"] = "1");
        var client = app.CreateClient();
        using var turns = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.turns");

        Assert.Single(await WaitForSparesAsync(app, 1));
        var first = await ChatAsync(client, """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"system","content":"You are the first."},{"role":"user","content":"one"}]}""");
        Assert.Single(await WaitForSparesAsync(app, 1));
        var second = await ChatAsync(client, """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"two"}]}""");

        Assert.Equal(["one"], first.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(["two"], second.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(1, second.GetProperty("n_messages").GetInt32());
        var requests = api.MessageRequests();
        Assert.Contains(requests[0].GetProperty("system").EnumerateArray(), b => b.GetProperty("text").GetString() == "You are the first.");
        Assert.DoesNotContain(requests[1].GetProperty("system").EnumerateArray(), b => b.GetProperty("text").GetString() == "You are the first.");
        Assert.All(requests, r => Assert.Empty(r.GetProperty("tools").EnumerateArray()));
        Assert.Equal(["warm", "warm"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
    }

    [Fact]
    public async Task Kept_conversations_and_tool_allowlists_start_cold()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Models:0:WarmSpares"] = "1");
        var client = app.CreateClient();
        using var turns = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.turns");
        Assert.Single(await WaitForSparesAsync(app, 1));

        using var kept = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"keep","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        Assert.Equal(["cold"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        Assert.Single(ProcessProbe.FindMarked(app.Marker));
    }

    [Fact]
    public async Task A_spare_that_dies_while_waiting_is_replaced_and_no_chat_notices()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Models:0:WarmSpares"] = "1");
        var client = app.CreateClient();
        var spare = Assert.Single(await WaitForSparesAsync(app, 1));

        using (var process = Process.GetProcessById(spare))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(TimeSpan.FromSeconds(5));
        }

        using var response = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"still here"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("still here", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString());
        // A new spare appears (the chat's own process may still be exiting beside it); the killed one is gone.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        IReadOnlyList<int> processes;
        while ((processes = ProcessProbe.FindMarked(app.Marker)).All(pid => pid == spare) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Cancel);
        }

        Assert.Contains(processes, pid => pid != spare);
        Assert.DoesNotContain(spare, processes);
    }

    [Fact]
    public async Task A_missing_cli_does_not_make_the_pool_spin()
    {
        await using var app = GatewayApp.WithFakeCli(configure: s =>
        {
            s["ClaudeBackend:CliPath"] = "/nonexistent/claude";
            s["ClaudeBackend:Models:0:WarmSpares"] = "2";
        });
        using var starts = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.starts");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        await Task.Delay(TimeSpan.FromSeconds(2), Cancel);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        // The two spares of the first fill, and the request's own cold start: no retry loop.
        Assert.InRange(starts.GetMeasurementSnapshot().Count, 1, 3);
    }
}
