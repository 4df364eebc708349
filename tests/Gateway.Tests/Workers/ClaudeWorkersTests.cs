using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Workers;

/// <summary>
/// A gateway in front of two Claude workers, each the gateway's binary as a process of its own with
/// <c>CLAUDEPROXY_ROLE=worker</c>, running the real CLI against the fake API.
/// </summary>
public sealed class ClaudeWorkersTests : IAsyncLifetime
{
    private FakeAnthropicServer _api = null!;
    private RedisServer _redis = null!;
    private readonly List<GatewayProcess> _workers = [];
    private readonly string _marker = Guid.NewGuid().ToString("N");

    private const string WorkerKey = "a-secret-the-front-and-its-workers-share";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        RealCli.EnsureInstalled();
        if (!RedisServer.IsInstalled)
        {
            const string Missing = "Needs redis-server (.ci/run installs the Debian package).";
            Assert.Skip(RepoPaths.IsCi ? throw new InvalidOperationException(Missing) : Missing);
        }

        _redis = await RedisServer.StartAsync();
        _api = await FakeAnthropicServer.StartAsync("--reply", "history");
        for (var i = 0; i < 2; i++)
        {
            _workers.Add(await StartWorkerAsync());
        }
    }

    /// <summary>A worker process; on <paramref name="port"/> when it comes back where one was.</summary>
    private async Task<GatewayProcess> StartWorkerAsync(int? port = null) =>
        await GatewayProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "ClaudeProxy.Gateway.dll"), new Dictionary<string, string>
            {
                ["CLAUDEPROXY_ROLE"] = "worker",
                ["CLAUDEPROXY_WORKER_KEY"] = WorkerKey,
                ["CLAUDEPROXY_REDIS"] = _redis.Configuration,
                ["OLLAMA_URL"] = "none",
                ["CLAUDE_CLI"] = RepoPaths.RealClaudeCli,
                ["ClaudeBackend__Models__0__WarmSpares"] = "0",
                ["ClaudeBackend__Models__0__WarmConversationSpares"] = "0",
                ["ClaudeBackend__Models__0__MaxWarmSpares"] = "0",
                ["ClaudeBackend__DataDirectory"] = Directory.CreateTempSubdirectory("worker-data-").FullName,
                ["ClaudeBackend__Environment__HOME"] = Directory.CreateTempSubdirectory("worker-home-").FullName,
                ["ClaudeBackend__Environment__ANTHROPIC_BASE_URL"] = _api.BaseUrl,
                ["ClaudeBackend__Environment__ANTHROPIC_API_KEY"] = "sk-ant-fake",
                [$"ClaudeBackend__Environment__{ProcessProbe.MarkerVariable}"] = _marker,
            }, port);

    private GatewayApp Front(bool kestrel = false) => GatewayApp.WithRealCli(_api, kestrel, settings =>
    {
        for (var i = 0; i < _workers.Count; i++)
        {
            settings[$"Gateway:Workers:{i}"] = _workers[i].Client.BaseAddress!.ToString();
        }

        settings["Gateway:WorkerKey"] = WorkerKey;
    });

    [Fact]
    public async Task A_worker_serves_the_backend_contract_and_health_and_nothing_of_the_front_door()
    {
        var worker = _workers[0].Client;

        const string Turn = """{"model":"claude-sonnet:latest","owner":"someone","allowedTools":["Bash"],"messages":[{"role":"user","text":"hello worker"}]}""";
        using var unkeyed = await worker.PostAsync("/v1/turns", Json(Turn), Cancel);
        using var turn = await worker.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/turns")
        {
            Content = Json(Turn.Replace("\"owner\":\"someone\",\"allowedTools\":[\"Bash\"],", "", StringComparison.Ordinal)),
            Headers = { { "X-ClaudeProxy-Worker-Key", WorkerKey } },
        }, Cancel);
        using var chat = await worker.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        using var ready = await worker.GetAsync("/readyz", Cancel);

        // Who asks, and which CLI tools a turn may use, are the front's to say: nobody else's turn is taken.
        Assert.Equal(HttpStatusCode.Unauthorized, unkeyed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        var events = (await turn.Content.ReadAsStringAsync(Cancel)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal("completed", events[^1].GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.NotFound, chat.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Each_conversations_turns_reach_the_worker_that_holds_its_session_streamed_or_not()
    {
        await using var front = Front(kestrel: true);
        using var client = front.CreateClient();
        var conversations = Enumerable.Range(0, 6).Select(i => $"conv-{i}").ToList();

        foreach (var id in conversations)
        {
            using var first = await client.PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"{{id}}","stream":false,"messages":[{"role":"user","content":"first of {{id}}"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        foreach (var id in conversations)
        {
            // Only the new message: the worker that holds the conversation's session has the rest.
            var (response, lines) = await PostAndReadLinesAsync(client, "/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"{{id}}","messages":[{"role":"user","content":"second of {{id}}"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var answer = string.Concat(lines.Select(l => l.Parse()).Where(l => !l.GetProperty("done").GetBoolean()).Select(l => l.GetProperty("message").GetProperty("content").GetString()));
            var history = JsonDocument.Parse(answer).RootElement;
            Assert.Equal([$"first of {id}", $"second of {id}"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        }

        using var ready = await client.GetAsync("/readyz", Cancel);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Contains("2 of 2 Claude workers healthy", await ready.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        // The front ran no CLI of its own; the workers' CLIs carry this test's marker.
        Assert.Empty(ProcessProbe.FindMarked(front.Marker));
        Assert.NotEmpty(ProcessProbe.FindMarked(_marker));
    }

    [Fact]
    public async Task A_conversation_whose_worker_is_killed_goes_on_at_the_other_worker_with_its_whole_history()
    {
        await using var front = Front();
        using var client = front.CreateClient();
        const string First = """{"role":"user","content":"My name is Ada."}""";

        using var one = await client.PostAsync("/v1/chat/completions", Json($$"""{"model":"claude-sonnet:latest","messages":[{{First}}]}"""), Cancel);
        var answer = (await one.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        // The worker that answered is the one whose CLI the fake API saw; kill -9 it.
        var holder = (await Task.WhenAll(_workers.Select(async w => (Worker: w, Ran: await HasRunATurnAsync(w))))).Single(w => w.Ran).Worker;
        holder.Process.Kill(entireProcessTree: true);
        using var two = await client.PostAsync("/v1/chat/completions", Json($$"""
            {"model":"claude-sonnet:latest","messages":[{{First}},{"role":"assistant","content":{{JsonSerializer.Serialize(answer)}}},{"role":"user","content":"What is my name?"}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        var history = JsonDocument.Parse((await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!).RootElement;
        Assert.Equal(["My name is Ada.", "What is my name?"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Single(history.GetProperty("assistant_texts").EnumerateArray());
        Assert.Contains(front.Logs, l => l.Contains("could not be reached", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_conversation_with_an_id_whose_worker_is_killed_goes_on_at_the_other_from_the_shared_store()
    {
        await using var front = Front();
        using var client = front.CreateClient();

        using var one = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"shared-1","stream":false,"messages":[{"role":"user","content":"My name is Ada."}]}"""), Cancel);
        var holder = (await Task.WhenAll(_workers.Select(async w => (Worker: w, Ran: await HasRunATurnAsync(w))))).Single(w => w.Ran).Worker;
        holder.Process.Kill(entireProcessTree: true);
        // Only the new message, as a client of the original server's ids sends it: the rest is the conversation's.
        using var two = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"shared-1","stream":false,"messages":[{"role":"user","content":"What is my name?"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        var history = JsonDocument.Parse((await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        Assert.Equal(["My name is Ada.", "What is my name?"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Single(history.GetProperty("assistant_texts").EnumerateArray());
    }

    [Fact]
    public async Task A_worker_that_comes_back_gets_its_conversations_again()
    {
        await using var front = Front();
        using var client = front.CreateClient();
        string Turn(string text) => $$"""{"model":"claude-sonnet:latest","id":"rejoin-1","stream":false,"messages":[{"role":"user","content":"{{text}}"}]}""";

        using var one = await client.PostAsync("/api/chat", Json(Turn("one")), Cancel);
        var holder = (await Task.WhenAll(_workers.Select(async w => (Worker: w, Ran: await HasRunATurnAsync(w))))).Single(w => w.Ran).Worker;
        var port = holder.Client.BaseAddress!.Port;
        holder.Process.Kill(entireProcessTree: true);
        using var two = await client.PostAsync("/api/chat", Json(Turn("two")), Cancel);
        var back = await StartWorkerAsync(port);
        _workers[_workers.IndexOf(holder)] = back;
        await WaitUntilAsync(async () => (await client.GetStringAsync("/readyz", Cancel)).Contains("2 of 2 Claude workers healthy", StringComparison.Ordinal));
        using var three = await client.PostAsync("/api/chat", Json(Turn("three")), Cancel);

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], new[] { one.StatusCode, two.StatusCode, three.StatusCode });
        // The conversation's worker again, which went on from the shared store with every turn.
        Assert.True(await HasRunATurnAsync(back));
        var history = JsonDocument.Parse((await three.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        Assert.Equal(["one", "two", "three"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never held");
            await Task.Delay(250, Cancel);
        }
    }

    /// <summary>Whether the worker has run a turn: its own metrics count one.</summary>
    private static async Task<bool> HasRunATurnAsync(GatewayProcess worker) =>
        (await worker.Client.GetStringAsync("/metrics", Cancel)).Split('\n').Any(line => line.StartsWith("claudeproxy_cli_turns_total{", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            worker.Dispose();
        }

        await _api.DisposeAsync();
        _redis?.Dispose();
    }
}
