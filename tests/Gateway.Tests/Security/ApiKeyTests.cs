using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Security;

public sealed class ApiKeyTests
{
    private const string AliceKey = "alice-key-0123456789abcdef";
    private const string BobKey = "bob-key-0123456789abcdef";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static GatewayApp WithKeys(Action<Dictionary<string, string?>>? more = null) => GatewayApp.WithFakeCli(configure: s =>
    {
        s["Gateway:ApiKeys:0:Name"] = "alice";
        s["Gateway:ApiKeys:0:Key"] = AliceKey;
        s["Gateway:ApiKeys:0:AllowedTools:0"] = "Read";
        s["Gateway:ApiKeys:1:Name"] = "bob";
        s["Gateway:ApiKeys:1:Key"] = BobKey;
        more?.Invoke(s);
    });

    private static HttpRequestMessage Request(HttpMethod method, string path, string? bearer = null, string? apiKey = null, string? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new("Bearer", bearer);
        }

        if (apiKey is not null)
        {
            request.Headers.Add("X-API-Key", apiKey);
        }

        if (body is not null)
        {
            request.Content = Json(body);
        }

        return request;
    }

    [Fact]
    public void Listening_beyond_loopback_without_keys_refuses_to_start()
    {
        using var app = GatewayApp.WithFakeCli(configure: s => s["Gateway:Host"] = "0.0.0.0");

        var error = Assert.ThrowsAny<Exception>(() => app.CreateClient());

        Assert.Contains("HOST=0.0.0.0", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("worker", "0.0.0.0", "", "CLAUDEPROXY_WORKER_KEY")]
    [InlineData("worker", "127.0.0.1", "http://127.0.0.1:1", "cannot have workers of its own")]
    [InlineData("gateway", "127.0.0.1", "http://10.1.2.3:22434", "beyond loopback")]
    [InlineData("gateway", "127.0.0.1", "ftp://127.0.0.1:1", "not an http(s) URL")]
    public void A_worker_or_workers_that_others_could_use_without_the_worker_key_refuse_to_start(string role, string host, string worker, string expected)
    {
        using var app = GatewayApp.WithFakeCli(configure: s =>
        {
            (s["Gateway:Role"], s["Gateway:Host"]) = (role, host);
            if (worker.Length > 0)
            {
                s["Gateway:Workers:0"] = worker;
            }
        });

        var error = Assert.ThrowsAny<Exception>(() => app.CreateClient());

        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Gateway:ApiKeys:0:Key", "short", "Key")]
    [InlineData("ClaudeBackend:Models:0:CliModel", "--dangerously-skip-permissions", "not a flag")]
    [InlineData("ClaudeBackend:Models:1:Name", "no-colon", "must contain ':'")]
    [InlineData("ClaudeBackend:Models:2:WarmSpares", "1000", "WarmSpares")]
    public void A_setting_of_one_list_item_that_breaks_its_rule_refuses_to_start(string key, string value, string named)
    {
        using var app = GatewayApp.WithFakeCli(configure: s =>
        {
            s["Gateway:ApiKeys:0:Name"] = "ci";
            s["Gateway:ApiKeys:0:Key"] = "a-key-long-enough-for-the-rule";
            s[key] = value;
        });

        var error = Assert.ThrowsAny<Exception>(() => app.CreateClient());

        Assert.Contains(named, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Listening_beyond_loopback_starts_with_keys_or_an_explicit_override()
    {
        await using var withKeys = WithKeys(s => s["Gateway:Host"] = "0.0.0.0");
        await using var overridden = GatewayApp.WithFakeCli(configure: s =>
        {
            s["Gateway:Host"] = "0.0.0.0";
            s["Gateway:AllowUnauthenticatedRemote"] = "true";
        });

        Assert.Equal(HttpStatusCode.OK, (await withKeys.CreateClient().GetAsync("/", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await overridden.CreateClient().GetAsync("/api/tags", Cancel)).StatusCode);
    }

    [Fact]
    public async Task Without_a_valid_key_each_dialect_hears_401_in_its_own_words()
    {
        await using var app = WithKeys();
        var client = app.CreateClient();

        using var ollama = await client.SendAsync(Request(HttpMethod.Get, "/api/tags"), Cancel);
        using var openAi = await client.SendAsync(Request(HttpMethod.Get, "/v1/models", bearer: "wrong-key-0123456789abcdef"), Cancel);
        using var chat = await client.SendAsync(Request(HttpMethod.Post, "/api/chat", apiKey: AliceKey + "x", body: """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        // The original server's unprefixed paths are OpenAI's too: the route's dialect, or the list's own metadata, says so.
        using var unprefixedChat = await client.SendAsync(Request(HttpMethod.Post, "/chat/completions", body: """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        using var unprefixedModels = await client.SendAsync(Request(HttpMethod.Get, "/models"), Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, ollama.StatusCode);
        Assert.StartsWith("unauthorized", (await ollama.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, openAi.StatusCode);
        Assert.Equal("authentication_error", (await openAi.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("Bearer", openAi.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(HttpStatusCode.Unauthorized, chat.StatusCode);
        foreach (var openAiToo in (HttpResponseMessage[])[unprefixedChat, unprefixedModels])
        {
            Assert.Equal(HttpStatusCode.Unauthorized, openAiToo.StatusCode);
            Assert.Equal("authentication_error", (await openAiToo.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
        }

        Assert.False(File.Exists(app.FakeCliLog));
    }

    [Fact]
    public async Task A_key_is_accepted_as_a_bearer_token_or_an_x_api_key_header()
    {
        await using var app = WithKeys();
        var client = app.CreateClient();

        using var bearer = await client.SendAsync(Request(HttpMethod.Get, "/v1/models", bearer: AliceKey), Cancel);
        using var header = await client.SendAsync(Request(HttpMethod.Get, "/api/tags", apiKey: BobKey), Cancel);

        Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, header.StatusCode);
    }

    [Fact]
    public async Task Liveness_and_health_stay_open_and_metrics_need_a_key_unless_opened()
    {
        await using var closed = WithKeys();
        await using var open = WithKeys(s => s["Gateway:PublicMetrics"] = "true");

        Assert.Equal(HttpStatusCode.OK, (await closed.CreateClient().GetAsync("/", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await closed.CreateClient().GetAsync("/healthz", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await closed.CreateClient().GetAsync("/metrics", Cancel)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await open.CreateClient().GetAsync("/metrics", Cancel)).StatusCode);
    }

    [Fact]
    public async Task Tools_are_off_unless_the_keys_allowlist_names_them()
    {
        await using var app = WithKeys();
        var client = app.CreateClient();
        const string body = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"x"}]}""";

        (await client.SendAsync(Request(HttpMethod.Post, "/api/chat", bearer: AliceKey, body: body), Cancel)).Dispose();
        (await client.SendAsync(Request(HttpMethod.Post, "/api/chat", bearer: BobKey, body: body), Cancel)).Dispose();

        var tools = File.ReadAllLines(app.FakeCliLog).Select(line =>
        {
            var args = JsonDocument.Parse(line).RootElement.GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
            Assert.DoesNotContain(args, a => a.Contains("dangerously", StringComparison.Ordinal));
            return args[args.IndexOf("--tools") + 1];
        });
        Assert.Equal(["Read", ""], tools);
    }

    [Fact]
    public async Task One_keys_conversation_can_never_be_resumed_with_another_key()
    {
        // Every turn starts its own process here, so each one shows which session it resumes.
        await using var app = WithKeys(s => s["ClaudeBackend:MaxKeptProcesses"] = "0");
        var client = app.CreateClient();
        const string body = """{"model":"claude-sonnet:latest","id":"chat","stream":false,"messages":[{"role":"user","content":"x"}]}""";

        (await client.SendAsync(Request(HttpMethod.Post, "/api/chat", bearer: AliceKey, body: body), Cancel)).Dispose();
        (await client.SendAsync(Request(HttpMethod.Post, "/api/chat", bearer: BobKey, body: body), Cancel)).Dispose();
        (await client.SendAsync(Request(HttpMethod.Post, "/api/chat", bearer: AliceKey, body: body), Cancel)).Dispose();

        var starts = File.ReadAllLines(app.FakeCliLog).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        string Session(JsonElement start, string flag)
        {
            var args = start.GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
            return args.IndexOf(flag) is var at and >= 0 ? args[at + 1] : "";
        }

        Assert.NotEqual(Session(starts[0], "--session-id"), Session(starts[1], "--session-id"));
        Assert.NotEmpty(Session(starts[1], "--session-id"));
        Assert.NotEqual(starts[0].GetProperty("cwd").GetString(), starts[1].GetProperty("cwd").GetString());
        Assert.Equal(Session(starts[0], "--session-id"), Session(starts[2], "--resume"));
    }
}
