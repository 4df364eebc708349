using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.DependencyInjection;
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
    private int[]? _turnsSeen;

    private const string WorkerKey = "a-secret-the-front-and-its-workers-share";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        RealCli.EnsureInstalled();
        _redis = await RedisServer.StartOrSkipAsync();
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

    /// <summary>A front before the workers; with <paramref name="redis"/>, it shares its placements with every other front.</summary>
    private GatewayApp Front(bool kestrel = false, bool redis = true) => GatewayApp.WithRealCli(_api, kestrel, settings =>
    {
        for (var i = 0; i < _workers.Count; i++)
        {
            settings[$"Gateway:Workers:{i}"] = _workers[i].Client.BaseAddress!.ToString();
        }

        settings["Gateway:WorkerKey"] = WorkerKey;
        settings["ClaudeBackend:Redis"] = redis ? _redis.Configuration : null;
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
        var holder = await KillTheWorkerThatRanATurnAsync();
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
        var holder = await KillTheWorkerThatRanATurnAsync();
        // Only the new message, as a client of the original server's ids sends it: the rest is the conversation's.
        using var two = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"shared-1","stream":false,"messages":[{"role":"user","content":"What is my name?"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        var history = JsonDocument.Parse((await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        Assert.Equal(["My name is Ada.", "What is my name?"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Single(history.GetProperty("assistant_texts").EnumerateArray());
    }

    [Fact]
    public async Task A_conversation_with_an_id_whose_worker_is_killed_while_it_waits_for_the_clients_function_goes_on_at_the_other()
    {
        await _api.ConfigureAsync("""{"reply": "agent"}""");
        await using var front = Front();
        using var client = front.CreateClient();

        var call = await AskForTheWeatherAsync(client, "tools-1");
        // The worker whose CLI made the call waits for its result; kill -9 it.
        var holder = await KillTheWorkerThatRanATurnAsync();
        using var two = await SendTheWeatherAsync(client, "tools-1", call);

        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        // The other worker asked the question again, and the model's same call got the client's result at once: the
        // model saw a real tool_use and tool_result, and answered from them.
        Assert.True(await HasRunATurnAsync(_workers.Single(w => w != holder)));
        var answer = (await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.StartsWith("done after 1 rounds", answer);
        Assert.Contains("fog in Oslo", answer);
        var last = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("tool_use", last[^2].GetProperty("content")[0].GetProperty("type").GetString());
        Assert.Equal("tool_result", last[^1].GetProperty("content")[0].GetProperty("type").GetString());
        // The store keeps the round once, as the client sent it: nothing of the killed worker's unanswered call.
        Assert.Equal(["user", "assistant", "user", "assistant"], (await KeptConversationAsync()).Select(m => m.Role));
        Assert.Empty(_api.UnpairedToolBlocks());
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("ollama")]
    public async Task A_conversation_with_an_id_that_called_the_clients_function_goes_on_at_the_other_worker_with_its_calls_and_results(string dialect)
    {
        await _api.ConfigureAsync("""{"reply": "agent"}""");
        await using var front = Front();
        using var client = front.CreateClient();
        int rounds;
        if (dialect == "openai")
        {
            var call = await AskForTheWeatherAsync(client, "tools-kept");
            using var done = await SendTheWeatherAsync(client, "tools-kept", call);
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
            rounds = 1;
        }
        else
        {
            // A client of the original server's ids sends only what is new: each round with its question, and without
            // ids, so its calls get ones by place, the same every round.
            using var hello = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"tools-kept","stream":false,"messages":[{"role":"user","content":"hello"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, hello.StatusCode);
            foreach (var city in new[] { "Oslo", "Bergen" })
            {
                var question = $$"""{"role":"user","content":"weather?\ncall:get_weather:{\"city\":\"{{city}}\"}"}""";
                using var asked = await client.PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"tools-kept","stream":false,"tools":{{WeatherTools}},"messages":[{{question}}]}"""), Cancel);
                var function = (await asked.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function");
                var requestsBefore = _api.MessageRequests().Count;
                using var done = await client.PostAsync("/api/chat", Json($$"""
                    {"model":"claude-sonnet:latest","id":"tools-kept","stream":false,"tools":{{WeatherTools}},"messages":[{{question}},
                     {"role":"assistant","content":"","tool_calls":[{"function":{{function.GetRawText()}}}]},{"role":"tool","tool_name":"get_weather","content":"fog in {{city}}"}]}
                    """), Cancel);
                Assert.Equal(HttpStatusCode.OK, done.StatusCode);
                // The results went on in the process that waited for them (found in the conversation's session): one
                // request of the model's, its answer to the result, not the question asked again first.
                Assert.Equal(requestsBefore + 1, _api.MessageRequests().Count);
                Assert.Single(_api.MessageRequests()[^1].GetProperty("messages").EnumerateArray(), m => m.GetRawText().Contains($"call:get_weather:{{\\\"city\\\":\\\"{city}", StringComparison.Ordinal));
            }

            rounds = 2;
        }

        // The shared store keeps each round as the client sent it, each result beside its call, and the answer: after
        // the greeting kept before them, for the client that sent only what was new.
        var kept = (await KeptConversationAsync()).ToList();
        if (dialect == "ollama")
        {
            Assert.Equal(["hello", "hello"], kept.Take(2).Select(m => m.Text));
            kept.RemoveRange(0, 2);
        }

        Assert.Equal(Enumerable.Repeat<string[]>(["user", "assistant", "user", "assistant"], rounds).SelectMany(r => r), kept.Select(m => m.Role));
        var keptCalls = kept.Where(m => m.ToolCalls is not null).Select(m => Assert.Single(m.ToolCalls!)).ToList();
        Assert.All(keptCalls, call => Assert.Equal("get_weather", call.Name));
        Assert.Equal(keptCalls.Select(c => c.Id), kept.Where(m => m.ToolResults is not null).Select(m => Assert.Single(m.ToolResults!).ToolCallId));
        Assert.Equal(rounds, keptCalls.Select(c => c.Id).Distinct().Count());
        Assert.Equal("fog in Oslo", kept[2].ToolResults![0].Content);
        Assert.StartsWith("done after 1 rounds", kept[3].Text, StringComparison.Ordinal);

        await KillTheWorkerThatRanATurnAsync();
        // Only the new message, as a client of the original server's ids sends it.
        using var next = dialect == "openai"
            ? await client.PostAsync("/v1/chat/completions", Json($$"""{"model":"claude-sonnet:latest","id":"tools-kept","tools":{{WeatherTools}},"messages":[{"role":"user","content":"and tomorrow?"}]}"""), Cancel)
            : await client.PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"tools-kept","stream":false,"tools":{{WeatherTools}},"messages":[{"role":"user","content":"and tomorrow?"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        // The other worker went on from the store: the model saw each question, its call, the result and the answer.
        var sent = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().ToList();
        if (dialect == "ollama")
        {
            Assert.Equal(["user", "assistant"], sent.Take(2).Select(m => m.GetProperty("role").GetString()));
            sent.RemoveRange(0, 2);
        }

        Assert.Equal([.. Enumerable.Repeat<string[]>(["user", "assistant", "user", "assistant"], rounds).SelectMany(r => r), "user"], sent.Select(m => m.GetProperty("role").GetString()));
        var toolUse = Blocks(sent[1]).Single(b => b.GetProperty("type").GetString() == "tool_use");
        var toolResult = Blocks(sent[2]).Single(b => b.GetProperty("type").GetString() == "tool_result");
        Assert.Equal("mcp__client__get_weather", toolUse.GetProperty("name").GetString());
        Assert.Equal(toolUse.GetProperty("id").GetString(), toolResult.GetProperty("tool_use_id").GetString());
        Assert.Contains("fog in Oslo", toolResult.GetProperty("content").ToString(), StringComparison.Ordinal);
        Assert.Contains(Blocks(sent[^1]), b => b.GetProperty("type").GetString() == "text" && b.GetProperty("text").GetString() == "and tomorrow?");
        Assert.Empty(_api.UnpairedToolBlocks());
    }

    private static IEnumerable<JsonElement> Blocks(JsonElement message) =>
        message.GetProperty("content") is { ValueKind: JsonValueKind.Array } content ? content.EnumerateArray() : [];

    /// <summary>The messages the shared store keeps of the one conversation in it, read from Redis itself.</summary>
    private async Task<IReadOnlyList<ClaudeMessage>> KeptConversationAsync() =>
        [.. Assert.Single(await _redis.ListsAsync("claudeproxy:conversation:*")).Select(item => ClaudeBackendContract.ParseMessage(item))];

    [Fact]
    public async Task A_worker_that_comes_back_takes_new_chats_and_a_conversation_that_went_on_elsewhere_stays_there()
    {
        await using var front = Front();
        using var client = front.CreateClient();
        string Turn(string text) => $$"""{"model":"claude-sonnet:latest","id":"rejoin-1","stream":false,"messages":[{"role":"user","content":"{{text}}"}]}""";

        using var one = await client.PostAsync("/api/chat", Json(Turn("one")), Cancel);
        var holder = await KillTheWorkerThatRanATurnAsync();
        var port = holder.Client.BaseAddress!.Port;
        using var two = await client.PostAsync("/api/chat", Json(Turn("two")), Cancel);
        var back = await StartWorkerAsync(port);
        _workers[_workers.IndexOf(holder)] = back;
        await WaitUntilAsync(async () => (await client.GetStringAsync("/readyz", Cancel)).Contains("2 of 2 Claude workers healthy", StringComparison.Ordinal));
        using var three = await client.PostAsync("/api/chat", Json(Turn("three")), Cancel);
        var movedBack = await HasRunATurnAsync(back);
        // Two new chats at once: the second goes to whichever worker the first did not take.
        await _api.ConfigureAsync("""{"reply":"fixed:one two three four five six seven eight","chunk_chars":4,"chunk_delay_ms":300}""");
        using var running = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat")
        {
            Content = Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"a new chat"}]}"""),
        }, HttpCompletionOption.ResponseHeadersRead, Cancel);
        var reader = new StreamReader(await running.Content.ReadAsStreamAsync(Cancel));
        Assert.NotNull(await reader.ReadLineAsync(Cancel));
        using var another = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"another new chat"}]}"""), Cancel);
        await reader.ReadToEndAsync(Cancel);

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK], new[] { one.StatusCode, two.StatusCode, three.StatusCode, another.StatusCode });
        // The conversation stays where it went on, whose session has every turn: it is not rebuilt a second time.
        Assert.False(movedBack);
        var history = JsonDocument.Parse((await three.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        Assert.Equal(["one", "two", "three"], history.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.True(await HasRunATurnAsync(back));
    }

    /// <param name="redis">
    /// With Redis, the later turns go through another front, which finds the placements there; without, through the
    /// same front, which keeps them in its memory.
    /// </param>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_new_chat_goes_to_the_least_busy_worker_and_its_later_turns_stay_there(bool redis)
    {
        await using var front = Front(redis: redis);
        await using var otherFront = redis ? Front() : null;
        using var client = front.CreateClient();
        static string Opening(string text) => $$"""{"role":"user","content":"{{text}}"}""";
        static string Chat(string messages, bool stream = false) => $$"""{"model":"claude-sonnet:latest","stream":{{(stream ? "true" : "false")}},"messages":[{{messages}}]}""";
        // Each answer takes seconds (ten chunks, 300 ms apart): the first chat is still running when the second starts.
        await _api.ConfigureAsync("""{"reply":"fixed:one two three four five six seven eight","chunk_chars":4,"chunk_delay_ms":300}""");

        var first = Opening("the first chat");
        var running = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json(Chat(first, stream: true)) }, HttpCompletionOption.ResponseHeadersRead, Cancel);
        var reader = new StreamReader(await running.Content.ReadAsStreamAsync(Cancel));
        Assert.NotNull(await reader.ReadLineAsync(Cancel));
        var firstWorker = await WorkerThatRanAsync(0);
        // A second chat whose hash names the first chat's worker, the busy one: only its load can send it elsewhere.
        var second = Enumerable.Range(0, 100).Select(i => Opening($"the second chat, take {i}"))
            .First(opening => HashWorkerOf(Chat(opening)) == firstWorker);
        using var secondAnswer = await client.PostAsync("/api/chat", Json(Chat(second)), Cancel);
        await reader.ReadToEndAsync(Cancel);
        running.Dispose();
        var secondWorker = await WorkerThatRanAsync(1);
        await _api.ConfigureAsync("""{"reply":"history","chunk_delay_ms":0}""");

        // Each chat's next turn: on the worker that holds it, though the second's hash names the other.
        static string Next(string opening) => Chat($$"""{{opening}},{"role":"assistant","content":"one two three four five six seven eight"},{"role":"user","content":"and then?"}""");
        using var otherClient = (otherFront ?? front).CreateClient();
        using var secondAgain = await otherClient.PostAsync("/api/chat", Json(Next(second)), Cancel);
        var secondAgainWorker = await WorkerThatRanAsync(2);
        using var firstAgain = await otherClient.PostAsync("/api/chat", Json(Next(first)), Cancel);
        var firstAgainWorker = await WorkerThatRanAsync(3);

        Assert.Equal(HttpStatusCode.OK, secondAnswer.StatusCode);
        Assert.NotEqual(firstWorker, secondWorker);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK], new[] { secondAgain.StatusCode, firstAgain.StatusCode });
        Assert.Equal(secondWorker, secondAgainWorker);
        Assert.Equal(firstWorker, firstAgainWorker);
    }

    [Fact]
    public async Task A_new_chat_at_another_front_goes_to_the_worker_that_is_not_busy_with_the_first_fronts_turn()
    {
        await using var front = Front();
        await using var otherFront = Front();
        using var client = front.CreateClient();
        static string Chat(string text, bool stream = false) => $$"""{"model":"claude-sonnet:latest","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"{{text}}"}]}""";
        // An answer that would take about 40 s (80 chunks, 500 ms apart): longer than the other front's probes (every
        // 5 s after the last one ended, each up to 15 s) take to see it. It is hung up on once they have.
        await _api.ConfigureAsync($$"""{"reply":"fixed:{{string.Concat(Enumerable.Repeat("one two ", 30))}}","chunk_chars":3,"chunk_delay_ms":500}""");
        var running = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json(Chat("the first chat", stream: true)) }, HttpCompletionOption.ResponseHeadersRead, Cancel);
        var reader = new StreamReader(await running.Content.ReadAsStreamAsync(Cancel));
        Assert.NotNull(await reader.ReadLineAsync(Cancel));
        var busy = await WorkerThatRanAsync(0);
        await _api.ConfigureAsync("""{"reply":"echo","chunk_delay_ms":0}""");

        // The other front runs nothing: it knows of the first front's turn only from the busy worker's /readyz.
        using var ready = await _workers[busy].Client.GetAsync("/readyz", Cancel);
        var loads = otherFront.Services.GetRequiredService<Gateway.Workers.WorkerLoads>();
        Assert.True(otherFront.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster(Gateway.Workers.ClaudeWorkers.ClusterId, out var cluster));
        await WaitUntilAsync(() => Task.FromResult(loads.Of(cluster.Destinations[$"worker-{busy}"]) == 1));
        using var otherClient = otherFront.CreateClient();
        var otherReady = await otherClient.GetStringAsync("/readyz", Cancel);
        // A chat whose hash names the busy worker: only the load reported there can send it elsewhere.
        var second = Enumerable.Range(0, 100).Select(i => $"the second chat, take {i}").First(text => HashWorkerOf(Chat(text)) == busy);
        using var secondAnswer = await otherClient.PostAsync("/api/chat", Json(Chat(second)), Cancel);
        var secondWorker = await WorkerThatRanAsync(1);
        running.Dispose();

        Assert.Equal("1", Assert.Single(ready.Headers.GetValues(Gateway.Workers.WorkerLoads.Header)));
        Assert.Contains("turns running: ", otherReady, StringComparison.Ordinal);
        Assert.Contains($"worker-{busy} 1", otherReady, StringComparison.Ordinal);
        Assert.Contains($"worker-{1 - busy} 0", otherReady, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, secondAnswer.StatusCode);
        Assert.NotEqual(busy, secondWorker);
    }

    [Fact]
    public async Task A_response_given_by_one_front_is_gone_on_from_through_another_on_the_worker_of_its_first_turn()
    {
        await using var front = Front();
        await using var otherFront = Front();
        using var client = front.CreateClient();
        using var otherClient = otherFront.CreateClient();
        const string Next = "What is my name?";
        // An opening whose hash names the other worker than the next request's own text does: only the conversation's
        // placement can bring the next turn to the first turn's worker.
        var nextOnItsOwn = HashWorkerOf($$"""{"model":"claude-sonnet:latest","input":"{{Next}}"}""");
        var opening = Enumerable.Range(0, 100).Select(i => $"My name is Ada, take {i}.")
            .First(text => HashWorkerOf($$"""{"model":"claude-sonnet:latest","input":"{{text}}"}""") != nextOnItsOwn);

        using var first = await client.PostAsJsonAsync("/v1/responses", new { model = "claude-sonnet:latest", input = opening }, Cancel);
        var firstWorker = await WorkerThatRanAsync(0);
        var id = (await first.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("id").GetString();
        using var next = await otherClient.PostAsJsonAsync("/v1/responses", new { model = "claude-sonnet:latest", input = Next, previous_response_id = id }, Cancel);
        var nextWorker = await WorkerThatRanAsync(1);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(firstWorker, nextWorker);
        var answer = (await next.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("output").EnumerateArray()
            .Single(item => item.GetProperty("type").GetString() == "message").GetProperty("content")[0].GetProperty("text").GetString()!;
        Assert.Equal([opening, Next], JsonDocument.Parse(answer).RootElement.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task A_client_that_hangs_up_on_the_front_stops_the_cli_on_the_worker()
    {
        await _api.ConfigureAsync("""{"reply":"fixed:one two three four five six seven eight","chunk_chars":4,"chunk_delay_ms":300}""");
        await using var front = Front(kestrel: true);
        using var hangUp = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var client = front.CreateClient();

        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json("""{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"go"}]}"""),
        }, HttpCompletionOption.ResponseHeadersRead, hangUp.Token);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(hangUp.Token));
        Assert.StartsWith("data: ", await reader.ReadLineAsync(hangUp.Token), StringComparison.Ordinal);
        Assert.NotEmpty(ProcessProbe.FindMarked(_marker));
        await hangUp.CancelAsync();
        response.Dispose();

        // The front's hop to the worker ends, and the worker ends the turn's CLI: no process of this test is left.
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(_marker, TimeSpan.FromSeconds(10)));
        Assert.Empty(ProcessProbe.FindMarked(front.Marker));
    }

    /// <summary>The index of the worker whose conversation hash wins for the chat <paramref name="body"/>.</summary>
    private int HashWorkerOf(string body)
    {
        var destinations = _workers.Select((w, i) => new Yarp.ReverseProxy.Model.DestinationState(
            $"worker-{i}", new Yarp.ReverseProxy.Model.DestinationModel(new Yarp.ReverseProxy.Configuration.DestinationConfig { Address = w.Client.BaseAddress!.ToString() }))).ToList();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Features.Set(Gateway.Workers.ConversationAffinity.Of(System.Text.Encoding.UTF8.GetBytes(body), owner: null)! with { IsNew = false });
        return destinations.IndexOf(new Gateway.Workers.ConversationHashPolicy(new Gateway.Workers.WorkerLoads()).PickDestination(context, null!, destinations)!);
    }

    /// <summary>
    /// The index of the one worker that has run more than its share of the <paramref name="turnsBefore"/> turns run so
    /// far, i.e. the worker that ran the last one.
    /// </summary>
    private async Task<int> WorkerThatRanAsync(int turnsBefore)
    {
        var counts = await Task.WhenAll(_workers.Select(TurnsOfAsync));
        Assert.Equal(turnsBefore + 1, counts.Sum());
        _turnsSeen ??= new int[_workers.Count];
        var ran = Enumerable.Range(0, counts.Length).Single(i => counts[i] > _turnsSeen[i]);
        _turnsSeen = counts;
        return ran;
    }

    /// <summary>How many turns the worker has run, from its own metrics.</summary>
    private static async Task<int> TurnsOfAsync(GatewayProcess worker) =>
        (await worker.Client.GetStringAsync("/metrics", Cancel)).Split('\n')
            .Where(line => line.StartsWith("claudeproxy_cli_turns_total{", StringComparison.Ordinal))
            .Sum(line => (int)double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

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
    private static async Task<bool> HasRunATurnAsync(GatewayProcess worker) => await TurnsOfAsync(worker) > 0;

    /// <summary>Kills (-9) the one worker that has run a turn, with its CLI processes; that worker.</summary>
    private async Task<GatewayProcess> KillTheWorkerThatRanATurnAsync()
    {
        var holder = (await Task.WhenAll(_workers.Select(async w => (Worker: w, Ran: await HasRunATurnAsync(w))))).Single(w => w.Ran).Worker;
        holder.Process.Kill(entireProcessTree: true);
        return holder;
    }

    private const string WeatherTools = """[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""";

    /// <summary>A question whose answer, for the fake API's agent, is a call of <c>get_weather</c>.</summary>
    private const string WeatherQuestion = """{"role":"user","content":"weather?\ncall:get_weather:{\"city\":\"Oslo\"}"}""";

    /// <summary>Asks the weather in conversation <paramref name="id"/>, with the client's function; the model's call of it.</summary>
    private static async Task<JsonElement> AskForTheWeatherAsync(HttpClient client, string id)
    {
        using var response = await client.PostAsync("/v1/chat/completions", Json($$"""{"model":"claude-sonnet:latest","id":"{{id}}","messages":[{{WeatherQuestion}}],"tools":{{WeatherTools}}}"""), Cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0].Clone();
    }

    /// <summary>Sends the conversation with <paramref name="call"/> and its result, "fog in Oslo", as OpenAI clients do.</summary>
    private static Task<HttpResponseMessage> SendTheWeatherAsync(HttpClient client, string id, JsonElement call) =>
        client.PostAsync("/v1/chat/completions", Json($$"""
            {"model":"claude-sonnet:latest","id":"{{id}}","tools":{{WeatherTools}},"messages":[{{WeatherQuestion}},
             {"role":"assistant","content":null,"tool_calls":[{{call.GetRawText()}}]},{"role":"tool","tool_call_id":"{{call.GetProperty("id").GetString()}}","content":"fog in Oslo"}]}
            """), Cancel);

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
