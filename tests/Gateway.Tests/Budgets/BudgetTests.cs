using System.ClientModel;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpenAI;
using OpenAI.Chat;

namespace ClaudeProxy.Gateway.Tests.Budgets;

/// <summary>
/// Budgets with the real CLI and the fake API, whose token counts give the CLI's real <c>total_cost_usd</c> (about
/// $0.0007 for a short echo): a budget of $0.0005 is spent by one turn.
/// </summary>
public sealed class BudgetTests : IAsyncLifetime
{
    private const string AliceKey = "alice-key-0123456789abcdef";
    private const string BobKey = "bob-key-0123456789abcdef";

    private FakeAnthropicServer _api = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _api = await FakeAnthropicServer.StartAsync("--reply", "echo");

    public async ValueTask DisposeAsync() => await _api.DisposeAsync();

    /// <summary>Alice has $0.0005 a day; Bob no budget of his own.</summary>
    private static void AliceWithATinyBudget(Dictionary<string, string?> settings)
    {
        settings["Gateway:ApiKeys:0:Name"] = "alice";
        settings["Gateway:ApiKeys:0:Key"] = AliceKey;
        settings["Gateway:ApiKeys:0:Budget:Usd"] = "0.0005";
        settings["Gateway:ApiKeys:0:Budget:Period"] = "Day";
        settings["Gateway:ApiKeys:1:Name"] = "bob";
        settings["Gateway:ApiKeys:1:Key"] = BobKey;
    }

    private static HttpClient ClientOf(GatewayApp app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// <summary>A gauge of this gateway's own meters, now (for <paramref name="budget"/>, when it is per budget).</summary>
    private static T GaugeOf<T>(GatewayApp app, string instrument, string? budget)
        where T : struct =>
        app.MeasureNow<T>(GenAiMetrics.MeterName, instrument).Single(m => budget is null || Equals(m.Tags["budget"], budget)).Value;

    private static async Task<JsonElement> UsageAsync(HttpClient client) =>
        await client.GetFromJsonAsync<JsonElement>("/api/usage", Cancel);

    [Fact]
    public async Task A_key_gets_answers_until_its_budget_is_spent_then_a_429_in_each_dialect_that_says_which_and_when()
    {
        await using var app = GatewayApp.WithRealCli(_api, configure: AliceWithATinyBudget);
        using var alice = ClientOf(app, AliceKey);
        using var bob = ClientOf(app, BobKey);

        using var first = await alice.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        var turnsBefore = _api.MessageRequests().Count;
        using var ollama = await alice.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"again"}]}"""), Cancel);
        using var anthropic = await alice.PostAsync("/v1/messages", Json("""{"model":"claude-sonnet:latest","max_tokens":100,"messages":[{"role":"user","content":"again"}]}"""), Cancel);
        using var responses = await alice.PostAsync("/v1/responses", Json("""{"model":"claude-sonnet:latest","input":"again"}"""), Cancel);
        var openAi = await Assert.ThrowsAsync<ClientResultException>(() => new OpenAIClient(new ApiKeyCredential(AliceKey), new OpenAIClientOptions { Endpoint = new Uri(alice.BaseAddress!, "/v1"), Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(app.CreateClient()), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(0) })
            .GetChatClient("claude-sonnet:latest").CompleteChatAsync([new UserChatMessage("again")], cancellationToken: Cancel));
        var turnsAfter = _api.MessageRequests().Count;
        using var bobs = await bob.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        var usage = await UsageAsync(alice);
        var metrics = await alice.GetStringAsync("/metrics", Cancel);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal([HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], new[] { ollama.StatusCode, anthropic.StatusCode, responses.StatusCode });
        Assert.Equal(429, openAi.Status);
        // Refused before any CLI ran: the fake API saw no more turns.
        Assert.Equal(turnsBefore, turnsAfter);
        var message = (await ollama.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString()!;
        Assert.Contains("key:alice budget of $0.0005 per day is spent", message, StringComparison.Ordinal);
        Assert.Contains($"resets at {DateTime.UtcNow.Date.AddDays(1):yyyy-MM-dd}T00:00:00Z", message, StringComparison.Ordinal);
        Assert.Equal("false", responses.Headers.GetValues("x-should-retry").Single());
        var retryAfter = ollama.Headers.RetryAfter?.Delta;
        Assert.InRange(retryAfter!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
        var anthropicError = (await anthropic.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error");
        Assert.Equal("rate_limit_error", anthropicError.GetProperty("type").GetString());
        var responsesError = (await responses.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error");
        Assert.Equal("insufficient_quota", responsesError.GetProperty("code").GetString());
        Assert.Contains("insufficient_quota", openAi.Message, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, bobs.StatusCode);

        // Alice sees her own spend and budget, not Bob's.
        var budget = Assert.Single(usage.GetProperty("budgets").EnumerateArray());
        Assert.Equal("key:alice", budget.GetProperty("budget").GetString());
        Assert.True(budget.GetProperty("spent_usd").GetDouble() >= 0.0005);
        Assert.Equal(0, budget.GetProperty("remaining_usd").GetDouble());
        var spend = Assert.Single(usage.GetProperty("spend").EnumerateArray());
        Assert.Equal(("alice", "claude-sonnet:latest"), (spend.GetProperty("api_key").GetString(), spend.GetProperty("model").GetString()));
        Assert.Equal(budget.GetProperty("spent_usd").GetDouble(), spend.GetProperty("day_usd").GetDouble(), 9);
        // The values from this gateway's own meters (every gateway in the test process exports through every /metrics).
        Assert.Equal(0.0005, GaugeOf<double>(app, "claudeproxy.budget.usd", "key:alice"));
        Assert.Equal(budget.GetProperty("spent_usd").GetDouble(), GaugeOf<double>(app, "claudeproxy.budget.spent.usd", "key:alice"), 9);
        Assert.Contains("claudeproxy_budget_usd{", metrics, StringComparison.Ordinal);
        Assert.Contains("claudeproxy_budget_spent_usd{", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_a_fallback_model_a_spent_budget_is_answered_by_the_local_model_and_says_so()
    {
        using var ollama = FakeOllama.Start();
        ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.Zero);
        await using var app = GatewayApp.WithRealCli(_api, configure: settings =>
        {
            GatewayApp.WithOllama(ollama.Url)(settings);
            settings["Gateway:Budget:Usd"] = "0.0005";
            settings["Gateway:Budget:Period"] = "Month";
            settings["ClaudeBackend:Models:0:FallbackModel"] = "llama3.2:3b";
        });
        using var client = app.CreateClient();
        using var fallbacks = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.fallbacks");

        using var first = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        using var fallback = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"again"}]}"""), Cancel);
        var answer = await fallback.Content.ReadAsStringAsync(Cancel);
        var metrics = await client.GetStringAsync("/metrics", Cancel);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        Assert.Equal("llama3.2:3b; reason=budget", fallback.Headers.GetValues("x-claudeproxy-fallback").Single());
        Assert.Contains("The", answer, StringComparison.Ordinal);
        var forwarded = JsonDocument.Parse(ollama.LastRequestTo("/api/chat").Body!).RootElement;
        Assert.Equal("llama3.2:3b", forwarded.GetProperty("model").GetString());
        Assert.Equal("again", forwarded.GetProperty("messages")[0].GetProperty("content").GetString());
        var counted = Assert.Single(fallbacks.GetMeasurementSnapshot());
        Assert.Equal(1, counted.Value);
        Assert.Equal(("claude-sonnet:latest", "llama3.2:3b", "budget"), (counted.Tags["gen_ai.request.model"], counted.Tags["claudeproxy.fallback_model"], counted.Tags["claudeproxy.fallback_reason"]));
        Assert.Contains("claudeproxy_fallbacks_total{", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Once_the_login_reaches_its_usage_limit_a_model_with_a_fallback_is_answered_by_it_until_the_reset()
    {
        using var ollama = FakeOllama.Start();
        ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.Zero);
        var replay = Path.GetTempFileName();
        var resets = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        await File.WriteAllTextAsync(replay, $$"""{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|{{resets}}"}""" + "\n", Cancel);
        await using var app = GatewayApp.WithFakeCli($"replay={replay};exit-code=1", configure: settings =>
        {
            GatewayApp.WithOllama(ollama.Url)(settings);
            settings["ClaudeBackend:Models:0:FallbackModel"] = "llama3.2:3b";
        });
        using var client = app.CreateClient();
        const string Chat = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}""";

        var before = await UsageAsync(client);
        using var limited = await client.PostAsync("/api/chat", Json(Chat), Cancel);
        using var fallback = await client.PostAsync("/api/chat", Json(Chat), Cancel);
        var after = await UsageAsync(client);
        var metrics = await client.GetStringAsync("/metrics", Cancel);

        Assert.Equal("allowed", before.GetProperty("usage_limit").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        Assert.Equal("llama3.2:3b; reason=usage_limit", fallback.Headers.GetValues("x-claudeproxy-fallback").Single());
        Assert.Equal("llama3.2:3b", JsonDocument.Parse(ollama.LastRequestTo("/api/chat").Body!).RootElement.GetProperty("model").GetString());
        var limit = after.GetProperty("usage_limit");
        Assert.Equal("rejected", limit.GetProperty("status").GetString());
        Assert.InRange(limit.GetProperty("resets_at").GetDateTimeOffset().ToUnixTimeSeconds(), resets - 5, resets + 5);
        Assert.InRange(GaugeOf<long>(app, "claudeproxy.usage_limit.resets_at", budget: null), resets - 5, resets + 5);
        Assert.Contains("claudeproxy_usage_limit_resets_at_seconds{", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_conversation_on_its_kept_process_is_charged_each_turns_own_cost_not_the_runs_total()
    {
        await using var app = GatewayApp.WithRealCli(_api, configure: settings => settings["Gateway:Budget:Usd"] = "100");
        using var client = app.CreateClient();
        // This gateway's own turns (every gateway in the test process counts into the same /metrics series).
        using var turns = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.turns");
        List<double> spentAfter = [0];

        for (var turn = 0; turn < 3; turn++)
        {
            var (response, _) = await StreamingReads.PostAndReadLinesAsync(client, "/api/chat",
                Json($$"""{"model":"claude-sonnet:latest","id":"kept-1","messages":[{"role":"user","content":"turn {{turn}}"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            spentAfter.Add((await UsageAsync(client)).GetProperty("budgets")[0].GetProperty("spent_usd").GetDouble());
        }

        // The CLI's total_cost_usd adds up over its run: charged as reported, the third turn would cost three times the first.
        var costs = spentAfter.Zip(spentAfter.Skip(1), (before, after) => after - before).ToList();
        Assert.All(costs, cost => Assert.InRange(cost, costs[0] * 0.5, costs[0] * 1.5));
        Assert.True(costs[0] > 0);
        // And the later turns did run on the first turn's process.
        Assert.Equal(["cold", "kept", "kept"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
    }

    [Fact]
    public async Task A_restart_keeps_the_spend()
    {
        GatewayApp before;
        double spent;
        await using (before = GatewayApp.WithRealCli(_api, configure: AliceWithATinyBudget))
        {
            using var alice = ClientOf(before, AliceKey);
            using var first = await alice.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            spent = (await UsageAsync(alice)).GetProperty("budgets")[0].GetProperty("spent_usd").GetDouble();
        }

        // A new gateway process on the same data folder.
        await using var after = GatewayApp.WithRealCli(_api, configure: AliceWithATinyBudget, sameStoreAs: before);
        using var again = ClientOf(after, AliceKey);

        using var refused = await again.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"again"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(spent, (await UsageAsync(again)).GetProperty("budgets")[0].GetProperty("spent_usd").GetDouble(), 9);
    }

    [Fact]
    public async Task Two_gateways_sharing_redis_share_the_count()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        void Shared(Dictionary<string, string?> settings)
        {
            AliceWithATinyBudget(settings);
            settings["ClaudeBackend:Redis"] = redis.Configuration;
        }

        await using var one = GatewayApp.WithRealCli(_api, configure: Shared);
        await using var other = GatewayApp.WithRealCli(_api, configure: Shared);
        using var aliceOne = ClientOf(one, AliceKey);
        using var aliceOther = ClientOf(other, AliceKey);

        using var first = await aliceOne.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"hi"}]}"""), Cancel);
        // The count is written as the turn ends, not awaited: the other gateway reads it once it is there.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await UsageAsync(aliceOther)).GetProperty("budgets")[0].GetProperty("remaining_usd").GetDouble() > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the other gateway never saw the spend");
            await Task.Delay(50, Cancel);
        }

        using var refused = await aliceOther.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"again"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
    }
}
