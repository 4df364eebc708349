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
            var processes = ProcessProbe.FindStartedByGateway(app.Marker);
            if (processes.Count >= count || DateTime.UtcNow > deadline)
            {
                return processes;
            }

            await Task.Delay(100, Cancel);
        }
    }

    private static async Task WaitUntilEndedAsync(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            await process.WaitForExitAsync(Cancel).WaitAsync(TimeSpan.FromSeconds(10), Cancel);
        }
        catch (ArgumentException)
        {
            // Already gone.
        }
    }

    private static async Task<JsonElement> ChatAsync(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/api/chat", Json(body), Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Cancel));
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

        var firstSpare = Assert.Single(await WaitForSparesAsync(app, 1));
        var first = await ChatAsync(client, """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"system","content":"You are the first."},{"role":"user","content":"one"}]}""");
        // The first spare ends with its one turn (it may still be exiting as the answer arrives); a new one replaces it.
        await WaitUntilEndedAsync(firstSpare);
        Assert.NotEqual(firstSpare, Assert.Single(await WaitForSparesAsync(app, 1)));
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

    private static string Turn(string id, string text, string model = "claude-sonnet:latest") =>
        $$"""{"model":"{{model}}","id":"{{id}}","stream":false,"messages":[{"role":"user","content":"{{text}}"}]}""";

    private static IEnumerable<string?> UserTexts(JsonElement history) => history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString());

    private static MetricCollector<long> Collect(GatewayApp app, string instrument) =>
        new(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, instrument);

    [Fact]
    public async Task Kept_conversations_start_cold_then_keep_their_own_process_and_never_see_each_others_history()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Models:0:WarmSpares"] = "1");
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        Assert.Single(await WaitForSparesAsync(app, 1));

        // Two conversations in turn, and a new chat between them on the warm spare.
        await ChatAsync(client, Turn("alpha", "a1"));
        await ChatAsync(client, Turn("beta", "b1"));
        var alpha2 = await ChatAsync(client, Turn("alpha", "a2"));
        var newChat = await ChatAsync(client, """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"n1"}]}""");
        var beta2 = await ChatAsync(client, Turn("beta", "b2"));
        var alpha3 = await ChatAsync(client, Turn("alpha", "a3"));

        Assert.Equal(["a1", "a2"], UserTexts(alpha2));
        Assert.Equal(["b1", "b2"], UserTexts(beta2));
        Assert.Equal(["a1", "a2", "a3"], UserTexts(alpha3));
        Assert.Equal(2, alpha3.GetProperty("assistant_texts").GetArrayLength());
        Assert.Equal(["n1"], UserTexts(newChat));
        Assert.Equal(["cold", "cold", "kept", "warm", "kept", "kept"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        // The two kept processes and a spare, no more, once the new chat's process has exited.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcessProbe.FindStartedByGateway(app.Marker).Count > 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Cancel);
        }

        Assert.InRange(ProcessProbe.FindStartedByGateway(app.Marker).Count, 2, 3);
    }

    [Fact]
    public async Task A_new_kept_conversation_takes_a_warm_process_whose_session_a_cold_process_later_resumes()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s =>
        {
            s["ClaudeBackend:Models:0:WarmConversationSpares"] = "1";
            s["ClaudeBackend:MaxTurnsPerProcess"] = "1";
        });
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        var spare = Assert.Single(await WaitForSparesAsync(app, 1));

        var first = JsonSerializer.Serialize((await ChatAsync(client, """{"model":"claude-sonnet:latest","id":"warm-kept","stream":false,"messages":[{"role":"system","content":"Be the spare."},{"role":"user","content":"one"}]}""")).GetRawText());
        // One turn per process here: the spare is ended after its turn, and the next turn resumes its session cold.
        await WaitUntilEndedAsync(spare);
        var session = api.MessageRequestsWithSession()[^1].SessionId;
        var second = await ChatAsync(client, $$"""{"model":"claude-sonnet:latest","id":"warm-kept","stream":false,"messages":[{"role":"system","content":"Be the spare."},{"role":"user","content":"one"},{"role":"assistant","content":{{first}}},{"role":"user","content":"two"}]}""");

        Assert.Equal(["one", "two"], UserTexts(second));
        Assert.Equal(session, api.MessageRequestsWithSession()[^1].SessionId);
        Assert.Equal(["warm", "cold"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        Assert.All(api.MessageRequests(), r => Assert.Contains(r.GetProperty("system").EnumerateArray(), b => b.GetProperty("text").GetString() == "Be the spare."));
    }

    [Fact]
    public async Task A_client_that_leaves_mid_answer_interrupts_the_turn_and_the_process_serves_the_next_one()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history", "--chunk-chars", "4", "--chunk-delay-ms", "150");
        await using var app = GatewayApp.WithRealCli(api);
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        using var recycled = Collect(app, "claudeproxy.cli.recycled");
        await api.ConfigureAsync("""{"chunk_delay_ms": 0, "chunk_chars": 100}""");
        // The client sends the answer back as it got it, so the history is the session's own.
        var firstAnswer = JsonSerializer.Serialize((await ChatAsync(client, Turn("int", "first"))).GetRawText());
        await api.ConfigureAsync("""{"chunk_delay_ms": 150, "chunk_chars": 4}""");

        using (var leave = CancellationTokenSource.CreateLinkedTokenSource(Cancel))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json($$"""{"model":"claude-sonnet:latest","id":"int","messages":[{"role":"user","content":"first"},{"role":"assistant","content":{{firstAnswer}}},{"role":"user","content":"long one"}]}""") };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, leave.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(leave.Token));
            Assert.Contains("\"content\"", await reader.ReadLineAsync(leave.Token), StringComparison.Ordinal);
            await leave.CancelAsync();
        }

        var kept = await WaitForSparesAsync(app, 1);
        await api.ConfigureAsync("""{"chunk_delay_ms": 0, "chunk_chars": 100}""");
        var next = await ChatAsync(client, Turn("int", "after"));

        Assert.Empty(recycled.GetMeasurementSnapshot().Select(m => m.Tags["reason"]));
        Assert.Equal(["cold", "kept", "kept"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        Assert.Equal(kept, ProcessProbe.FindStartedByGateway(app.Marker));
        // The CLI recorded the interruption in the conversation, as it does for its own users.
        Assert.Equal(["first", "long one"], UserTexts(next).Take(2));
        Assert.Contains("after", UserTexts(next).Last(), StringComparison.Ordinal);
        Assert.Contains("[Request interrupted by user]", next.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_process_is_recycled_at_the_configured_turn_count_and_the_conversation_resumes_whole()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:MaxTurnsPerProcess"] = "2");
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        using var recycled = Collect(app, "claudeproxy.cli.recycled");

        for (var i = 1; i <= 4; i++)
        {
            var history = await ChatAsync(client, Turn("recycle", $"t{i}"));
            Assert.Equal(Enumerable.Range(1, i).Select(n => $"t{n}"), UserTexts(history));
        }

        Assert.Equal(["cold", "kept", "cold", "kept"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        Assert.Equal(["turns", "turns"], recycled.GetMeasurementSnapshot().Select(m => m.Tags["reason"]));
    }

    [Theory]
    [InlineData("ClaudeBackend:KeptProcessIdleTimeout", "00:00:01", "idle")]
    [InlineData("ClaudeBackend:MaxProcessMemoryMB", "1", "memory")]
    [InlineData("ClaudeBackend:MaxKeptProcesses", "0", "evicted")]
    public async Task A_process_past_a_bound_is_ended_and_its_conversation_resumes_cold(string setting, string value, string reason)
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s[setting] = value);
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        using var recycled = Collect(app, "claudeproxy.cli.recycled");

        await ChatAsync(client, Turn("bounded", "one"));
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(15)));
        var second = await ChatAsync(client, Turn("bounded", "two"));

        Assert.Equal(["one", "two"], UserTexts(second));
        Assert.Equal(["cold", "cold"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
        Assert.Equal(reason, recycled.GetMeasurementSnapshot()[0].Tags["reason"]);
    }

    [Fact]
    public async Task A_kept_process_that_crashes_is_replaced_by_one_that_resumes_the_conversation()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api);
        var client = app.CreateClient();

        await ChatAsync(client, Turn("crash", "before"));
        // It dies while it waits, once it has written its answer to the session file (a few milliseconds after the answer).
        await WaitForSessionAnswerAsync(app);
        var kept = Assert.Single(ProcessProbe.FindStartedByGateway(app.Marker));
        using (var process = Process.GetProcessById(kept))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(TimeSpan.FromSeconds(5));
        }

        var after = await ChatAsync(client, Turn("crash", "after"));

        Assert.Equal(["before", "after"], UserTexts(after));
        Assert.DoesNotContain(kept, ProcessProbe.FindStartedByGateway(app.Marker));
    }

    [Fact]
    public async Task Another_model_for_a_kept_conversation_gets_a_process_of_that_model_with_the_history()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api);
        var client = app.CreateClient();
        using var recycled = Collect(app, "claudeproxy.cli.recycled");

        await ChatAsync(client, Turn("switch", "on sonnet"));
        var onHaiku = await ChatAsync(client, Turn("switch", "on haiku", model: "claude-haiku:latest"));

        Assert.Equal(["on sonnet", "on haiku"], UserTexts(onHaiku));
        Assert.Equal("changed", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
        var models = api.MessageRequests().Select(r => r.GetProperty("model").GetString()!).ToList();
        Assert.Contains("sonnet", models[0], StringComparison.Ordinal);
        Assert.Contains("haiku", models[^1], StringComparison.Ordinal);
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
        while ((processes = ProcessProbe.FindStartedByGateway(app.Marker)).All(pid => pid == spare) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Cancel);
        }

        Assert.Contains(processes, pid => pid != spare);
        Assert.DoesNotContain(spare, processes);
    }

    [Fact]
    public async Task After_a_burst_of_new_chats_the_pool_keeps_as_many_spares_until_the_demand_fades()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s =>
        {
            s["ClaudeBackend:Models:0:WarmSpares"] = "1";
            s["ClaudeBackend:Models:0:MaxWarmSpares"] = "3";
            // Long enough for a burst of cold starts on a loaded machine to be remembered until the next burst.
            s["ClaudeBackend:SpareDemandWindow"] = "00:00:20";
        });
        var client = app.CreateClient();
        using var turns = Collect(app, "claudeproxy.cli.turns");
        const string chat = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}""";
        await WaitForOnlySparesAsync(app, 1);

        // A chat and, at once, its title request: one spare was waiting, so the second starts cold (or on a spare still loading).
        await Task.WhenAll(ChatAsync(client, chat), ChatAsync(client, chat));
        // The pool now keeps two, and the next burst finds both warm.
        await WaitForOnlySparesAsync(app, 2);
        turns.Clear();
        await Task.WhenAll(ChatAsync(client, chat), ChatAsync(client, chat));
        Assert.Equal(["warm", "warm"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));

        // Twenty seconds without a burst: back to the one spare the configuration asks for. (Both bursts may fall in one
        // ten-second span, which counts as four new chats, so the pool may hold three spares until then.)
        await WaitForOnlySparesAsync(app, 1);
    }

    /// <summary>Waits until the CLI's session file of the app's one conversation holds an answer.</summary>
    private static async Task WaitForSessionAnswerAsync(GatewayApp app)
    {
        var projects = Path.Combine(app.Home, ".claude", "projects");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(Directory.Exists(projects) && Directory.EnumerateFiles(projects, "*.jsonl", SearchOption.AllDirectories)
                   .Any(file => File.ReadAllText(file).Contains("\"type\":\"assistant\"", StringComparison.Ordinal))))
        {
            Assert.True(DateTime.UtcNow < deadline, "The CLI never wrote its answer to the session file.");
            await Task.Delay(20, Cancel);
        }
    }

    /// <summary>
    /// Waits until exactly <paramref name="count"/> CLI processes of the app have run for a second and a half on end (the
    /// chats' own have ended, so these are the spares, and they have had time to load). Counted by process: the gauge on
    /// /metrics also sees the other gateways of the test process.
    /// </summary>
    private static async Task WaitForOnlySparesAsync(GatewayApp app, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var steady = TimeSpan.FromSeconds(1.5);
        DateTime? since = null;
        int now;
        while (DateTime.UtcNow < deadline)
        {
            now = ProcessProbe.FindStartedByGateway(app.Marker).Count;
            since = now == count ? since ?? DateTime.UtcNow : null;
            if (since is { } start && DateTime.UtcNow - start >= steady)
            {
                return;
            }

            await Task.Delay(100, Cancel);
        }

        now = ProcessProbe.FindStartedByGateway(app.Marker).Count;
        Assert.Fail($"{now} CLI processes, expected {count} for {steady.TotalSeconds} s on end; the gateway logged:\n{string.Join("\n", app.Logs)}");
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
