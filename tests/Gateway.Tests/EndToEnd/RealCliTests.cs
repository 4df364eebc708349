using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>The real <c>claude</c> CLI behind the gateway, talking to shared/claude-cli/fake_anthropic.py.</summary>
public sealed class RealCliTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Tokens_stream_to_the_client_as_the_model_produces_them()
    {
        // Four deltas of 6 characters, 0.5 s apart.
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:aaaaa bbbbb ccccc ddddd ", "--chunk-chars", "6", "--chunk-delay-ms", "500");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);

        var (response, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"go"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var content = lines.Where(l => !l.Parse().GetProperty("done").GetBoolean()).ToList();
        Assert.Equal("aaaaa bbbbb ccccc ddddd ", string.Concat(content.Select(l => l.Parse().GetProperty("message").GetProperty("content").GetString())));
        Assert.True(content.Count >= 4, $"expected a chunk per delta, got {content.Count}");
        // The first token reached the client long before the last one was produced: nothing was buffered.
        Assert.True(content[^1].At - content[0].At >= TimeSpan.FromSeconds(1.2), $"first at {content[0].At}, last at {content[^1].At}");
        Assert.True(lines[^1].Parse().GetProperty("done").GetBoolean());
    }

    [Fact]
    public async Task The_cli_gets_no_tools_and_the_clients_system_prompt()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);

        using var response = await app.CreateClient().PostAsync("/v1/chat/completions", Json("""{"model":"claude-haiku:latest","messages":[{"role":"system","content":"You are a pirate."},{"role":"user","content":"ahoy"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var completion = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.Equal("ahoy", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var sent = Assert.Single(api.MessageRequests());
        Assert.Empty(sent.GetProperty("tools").EnumerateArray());
        Assert.Equal("claude-haiku-4-5-20251001", sent.GetProperty("model").GetString());
        Assert.Contains(sent.GetProperty("system").EnumerateArray(), block => block.GetProperty("text").GetString() == "You are a pirate.");
        Assert.True(completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt64() > 0);
    }

    [Fact]
    public async Task A_file_a_client_names_with_an_at_sign_stays_text_and_never_reaches_the_model()
    {
        // The CLI attaches a file named as @path (or @"path") whatever its tools (2.1.197): a client must not read the host's files.
        var secret = Path.Combine(Path.GetTempPath(), $"claudeproxy-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(secret, "the host's secret", Cancel);
        try
        {
            await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
            await using var app = GatewayApp.WithRealCli(api);

            using var response = await app.CreateClient().PostAsync("/v1/chat/completions", Json($$"""
                {"model":"claude-haiku:latest","messages":[{"role":"user","content":"@{{secret}} and @\"{{secret}}\""}]}
                """), Cancel);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var sent = Assert.Single(api.MessageRequests()).GetRawText();
            Assert.DoesNotContain("the host's secret", sent, StringComparison.Ordinal);
            Assert.Equal($"\u2060@{secret} and \u2060@\"{secret}\"", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task A_history_sent_without_an_id_reaches_the_model()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api);

        using var response = await app.CreateClient().PostAsync("/api/chat", Json("""
            {"model":"claude-sonnet:latest","stream":false,"messages":[
              {"role":"user","content":"My name is Ada."},{"role":"assistant","content":"Nice to meet you, Ada."},{"role":"user","content":"What is my name?"}]}
            """), Cancel);

        var summary = JsonDocument.Parse((await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        // Each message in its own role, not a transcript in one user message.
        Assert.Equal(["My name is Ada.", "What is my name?"], summary.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(["Nice to meet you, Ada."], summary.GetProperty("assistant_texts").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task A_conversation_id_keeps_a_claude_session_across_requests_and_restarts()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        GatewayApp first;
        string answer;
        await using (first = GatewayApp.WithRealCli(api))
        {
            using var one = await first.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"conv-1","stream":false,"messages":[{"role":"user","content":"first turn"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, one.StatusCode);
            answer = (await one.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!;
        }

        // A new gateway process on the same data folder and HOME: the mapping and the session survived.
        await using var second = GatewayApp.WithRealCli(api, sameStoreAs: first);
        var session = api.MessageRequestsWithSession()[^1].SessionId;
        using var two = await second.CreateClient().PostAsync("/api/chat", Json($$"""
            {"model":"claude-sonnet:latest","id":"conv-1","stream":false,"messages":[
              {"role":"user","content":"first turn"},{"role":"assistant","content":{{JsonSerializer.Serialize(answer)}}},{"role":"user","content":"second turn"}]}
            """), Cancel);
        Assert.Equal(session, api.MessageRequestsWithSession()[^1].SessionId);

        var summary = JsonDocument.Parse((await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!).RootElement;
        // The resumed session holds turn one (user + assistant); the gateway sent only the new turn.
        Assert.Equal(3, summary.GetProperty("n_messages").GetInt32());
        Assert.Equal(["first turn", "second turn"], summary.GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_conversation_whose_claude_session_is_gone_is_rebuilt_from_the_history_the_client_sent(bool clientSendsHistory)
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        GatewayApp first;
        string answer;
        await using (first = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Environment:CLAUDE_CONFIG_DIR"] = Directory.CreateTempSubdirectory("config-1-").FullName))
        {
            using var one = await first.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"plain-id-1","stream":false,"messages":[{"role":"user","content":"first turn"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, one.StatusCode);
            answer = (await one.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!;
        }

        // The same data folder (the mapping survives), but the CLI's config folder is another one: the session is gone.
        await using var second = GatewayApp.WithRealCli(api, sameStoreAs: first, configure: s => s["ClaudeBackend:Environment:CLAUDE_CONFIG_DIR"] = Directory.CreateTempSubdirectory("config-2-").FullName);
        var client = second.CreateClient();
        var history = clientSendsHistory ? $$"""{"role":"user","content":"first turn"},{"role":"assistant","content":{{JsonSerializer.Serialize(answer)}}},""" : "";
        using var two = await client.PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"plain-id-1","stream":false,"messages":[{{history}}{"role":"user","content":"second turn"}]}"""), Cancel);
        using var three = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"plain-id-1","stream":false,"messages":[{"role":"user","content":"third turn"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        Assert.Equal(HttpStatusCode.OK, three.StatusCode);
        var rebuilt = string.Join("\n", UserTexts(await two.Content.ReadFromJsonAsync<JsonElement>(Cancel)));
        Assert.Equal(clientSendsHistory, rebuilt.Contains("first turn", StringComparison.Ordinal));
        Assert.Contains("second turn", rebuilt, StringComparison.Ordinal);
        // The new session is kept: the next turn continues it with only its own message sent. The history it was
        // rebuilt from is in it as the messages they were.
        var continued = UserTexts(await three.Content.ReadFromJsonAsync<JsonElement>(Cancel)).ToList();
        Assert.Equal(clientSendsHistory ? ["first turn", "second turn", "third turn"] : ["second turn", "third turn"], continued);
        Assert.Equal("third turn", continued[^1]);
        Assert.Contains(second.Logs, entry => entry.Contains("plain-id-1", StringComparison.Ordinal) && entry.Contains(clientSendsHistory ? "from the 2 earlier messages" : "starts afresh", StringComparison.Ordinal));
    }

    private static IEnumerable<string> UserTexts(JsonElement ollamaAnswer) =>
        JsonDocument.Parse(ollamaAnswer.GetProperty("message").GetProperty("content").GetString()!).RootElement
            .GetProperty("user_texts").EnumerateArray().Select(t => t.GetString()!);

    [Theory]
    [InlineData("429", HttpStatusCode.TooManyRequests, "rate_limit_error")]
    [InlineData("529", HttpStatusCode.ServiceUnavailable, "api_error")]
    [InlineData("401", HttpStatusCode.Unauthorized, "authentication_error")]
    [InlineData("400", HttpStatusCode.BadRequest, "invalid_request_error")]
    public async Task Api_failures_reach_the_client_as_errors_of_its_dialect(string failure, HttpStatusCode status, string openAiType)
    {
        await using var api = await FakeAnthropicServer.StartAsync("--fail", failure, "--retry-after", "1");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:MaxRetries"] = "1");
        var client = app.CreateClient();

        using var ollama = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        using var openAi = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(status, ollama.StatusCode);
        Assert.NotEmpty((await ollama.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString()!);
        Assert.Equal(status, openAi.StatusCode);
        Assert.Equal(openAiType, (await openAi.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
        if (status == HttpStatusCode.TooManyRequests)
        {
            Assert.NotNull(ollama.Headers.RetryAfter);
        }
    }

    [Fact]
    public async Task A_cli_that_is_not_logged_in_is_a_401_that_says_so()
    {
        await using var api = await FakeAnthropicServer.StartAsync();
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Environment:ANTHROPIC_API_KEY"] = "");

        using var response = await app.CreateClient().PostAsync("/api/generate", Json("""{"model":"claude-sonnet:latest","prompt":"x"}"""), Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Not logged in", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(api.MessageRequests());
    }

    [Fact]
    public async Task A_client_that_disconnects_stops_the_cli_and_its_children()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:" + new string('x', 400), "--chunk-chars", "4", "--chunk-delay-ms", "200");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var disconnect = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var client = app.CreateClient();

        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"go"}]}""") }, HttpCompletionOption.ResponseHeadersRead, disconnect.Token);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(disconnect.Token));
        Assert.Contains("xxxx", await reader.ReadLineAsync(disconnect.Token), StringComparison.Ordinal);
        Assert.NotEmpty(ProcessProbe.FindMarked(app.Marker));

        await disconnect.CancelAsync();
        response.Dispose();

        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!File.ReadAllText(api.LogPath).Contains("client_disconnected_mid_stream", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Cancel);
        }

        Assert.Contains("client_disconnected_mid_stream", File.ReadAllText(api.LogPath), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_image_reaches_the_model()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);
        const string pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg==";

        using var response = await app.CreateClient().PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"describe","images":["{{pixel}}"]}]}"""), Cancel);

        var text = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString();
        Assert.Contains("image/png", text, StringComparison.Ordinal);
    }
}
