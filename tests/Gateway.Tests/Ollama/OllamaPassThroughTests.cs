using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Ollama;

/// <summary>Requests for non-Claude models reach the Ollama behind the gateway untouched, and its answers come back untouched.</summary>
public sealed class OllamaPassThroughTests : IAsyncLifetime
{
    private readonly FakeOllama _ollama = FakeOllama.Start();
    private GatewayApp _app = null!;
    private HttpClient _client = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _app = GatewayApp.WithFakeCli(configure: GatewayApp.WithOllama(_ollama.Url));
        _client = _app.CreateClient();
        return ValueTask.CompletedTask;
    }

    public static TheoryData<string, string, string, string> Endpoints => new()
    {
        { "POST", "/api/chat", """{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"why?"}],"options":{"temperature":0.1}}""", """{"model":"llama3.2","message":{"role":"assistant","content":"because"},"done":true}""" },
        { "POST", "/api/generate", """{"prompt":"why?","model":"llama3.2","stream":false}""", """{"model":"llama3.2","response":"because","done":true}""" },
        { "POST", "/api/embed", """{"model":"all-minilm","input":["a","b"]}""", """{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862],[0.5,0.25]]}""" },
        { "POST", "/api/embeddings", """{"model":"all-minilm","prompt":"a"}""", """{"embedding":[0.5670403838157654,0.009260174818336964]}""" },
        { "POST", "/api/show", """{"model":"llama3.2"}""", """{"modelfile":"FROM llama3.2","details":{"family":"llama"},"model_info":{"general.architecture":"llama"},"capabilities":["completion","tools"]}""" },
        { "POST", "/api/show", """{"name":"llama3.2"}""", """{"modelfile":"FROM llama3.2","model_info":{}}""" },
        { "POST", "/api/pull", """{"model":"llama3.2","stream":false}""", """{"status":"success"}""" },
        { "POST", "/api/push", """{"model":"me/llama3.2","stream":false}""", """{"status":"success"}""" },
        { "POST", "/api/create", """{"model":"mario","from":"llama3.2","system":"You are Mario.","stream":false}""", """{"status":"success"}""" },
        { "POST", "/api/copy", """{"source":"llama3.2","destination":"llama3-backup"}""", "" },
        { "DELETE", "/api/delete", """{"model":"llama3-backup"}""", "" },
        { "POST", "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", "raw gguf bytes", "" },
        { "HEAD", "/api/blobs/sha256:29fdb92e57cf0827ded04ae6461b5931d01fa595843f55d36f5b275a52087dd2", "", "" },
        { "POST", "/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"model":"llama3.2"}""", """{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}""" },
        { "POST", "/v1/completions", """{"model":"llama3.2","prompt":"Say this is a test"}""", """{"id":"cmpl-1","object":"text_completion","choices":[{"text":"This is a test","index":0,"finish_reason":"stop"}]}""" },
        { "POST", "/v1/embeddings", """{"model":"all-minilm","input":"why?"}""", """{"object":"list","data":[{"object":"embedding","embedding":[0.1,0.2],"index":0}],"model":"all-minilm"}""" },
        { "GET", "/v1/models/llama3.2:latest", "", """{"id":"llama3.2:latest","object":"model","created":1746405464,"owned_by":"library"}""" },
        { "GET", "/api/status", "", """{"cloud":{"disabled":true,"source":"env"}}""" },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Each_ollama_endpoint_passes_through_byte_for_byte(string method, string path, string requestBody, string responseBody)
    {
        _ollama.Server.Given(Request.Create().WithPath(path).UsingMethod(method))
            .RespondWith(Response.Create().WithStatusCode(method == "POST" && path.StartsWith("/api/blobs", StringComparison.Ordinal) ? 201 : 200)
                .WithHeader("Content-Type", "application/json; charset=utf-8").WithBody(responseBody));
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (requestBody.Length > 0)
        {
            request.Content = new StringContent(requestBody, Encoding.UTF8, "application/json");
        }

        using var response = await _client.SendAsync(request, Cancel);

        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Cancel)}");
        Assert.Equal(method == "HEAD" ? "" : responseBody, await response.Content.ReadAsStringAsync(Cancel));
        var received = _ollama.LastRequestTo(path);
        Assert.Equal(method, received.Method);
        Assert.Equal(requestBody, received.Body ?? "");
    }

    [Fact]
    public async Task An_ollama_stream_reaches_the_client_chunk_by_chunk()
    {
        _ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.FromMilliseconds(400));
        await using var app = GatewayApp.WithFakeCli(kestrel: true, configure: GatewayApp.WithOllama(_ollama.Url));

        var (response, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/api/chat", Json("""{"model":"llama3.2","messages":[{"role":"user","content":"why is the sky blue?"}]}"""), Cancel);

        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Null(response.Content.Headers.ContentEncoding.FirstOrDefault());
        Assert.Equal(FakeOllama.ChatLines, lines.Select(l => l.Text));
        // Four lines 0.4 s apart arrive spread out: the proxy neither buffers nor batches them.
        Assert.True(lines[^1].At - lines[0].At >= TimeSpan.FromSeconds(1), $"first at {lines[0].At}, last at {lines[^1].At}");
        Assert.True(lines[1].At - lines[0].At >= TimeSpan.FromMilliseconds(250), $"second came {lines[1].At - lines[0].At} after the first");
    }

    [Fact]
    public async Task The_original_servers_unprefixed_paths_reach_ollama_under_its_v1_paths()
    {
        const string completion = """{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}""";
        const string model = """{"id":"llama3.2:latest","object":"model","created":1746405464,"owned_by":"library"}""";
        _ollama.Server.Given(Request.Create().WithPath("/v1/chat/completions").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody(completion));
        _ollama.Get("/v1/models/llama3.2:latest", model);
        const string request = """{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}""";

        using var chat = await _client.PostAsync("/chat/completions", Json(request), Cancel);
        using var one = await _client.GetAsync("/models/llama3.2:latest", Cancel);

        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        Assert.Equal(completion, await chat.Content.ReadAsStringAsync(Cancel));
        Assert.Equal(request, _ollama.LastRequestTo("/v1/chat/completions").Body);
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal(model, await one.Content.ReadAsStringAsync(Cancel));
        Assert.DoesNotContain(_ollama.Server.LogEntries, e => e.RequestMessage!.Path is "/chat/completions" or "/models/llama3.2:latest");
    }

    [Fact]
    public async Task The_host_header_is_the_upstreams_not_the_clients()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json("""{"model":"llama3.2","messages":[]}""") };
        request.Headers.Host = "claudeproxy.example.com";

        using var response = await _client.SendAsync(request, Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var host = _ollama.LastRequestTo("/api/chat").Headers!["Host"].Single();
        Assert.Equal(new Uri(_ollama.Url).Authority, host);
    }

    [Theory]
    [InlineData(404, """{"error":"model 'nope' not found"}""")]
    [InlineData(400, """{"error":"invalid format"}""")]
    [InlineData(503, """{"error":"server busy, please try again.  maximum pending requests exceeded"}""")]
    public async Task Ollamas_own_errors_reach_the_client_unchanged(int status, string body)
    {
        _ollama.Server.Given(Request.Create().WithPath("/api/generate").UsingPost())
            .RespondWith(Response.Create().WithStatusCode(status).WithHeader("Content-Type", "application/json; charset=utf-8").WithBody(body));

        using var response = await _client.PostAsync("/api/generate", Json("""{"model":"nope","prompt":"x"}"""), Cancel);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync(Cancel));
    }

    [Fact]
    public async Task Tags_show_the_claude_models_and_ollamas_untouched_without_duplicates()
    {
        var models = (await _client.GetFromJsonAsync<JsonElement>("/api/tags", Cancel)).GetProperty("models").EnumerateArray().ToList();

        var names = models.Select(m => m.GetProperty("name").GetString()).ToList();
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest", "llama3.2:latest"], names);
        var llama = JsonDocument.Parse(FakeOllama.Tags).RootElement.GetProperty("models")[0];
        Assert.Equal(llama.GetRawText(), models[3].GetRawText());
        Assert.Equal("claude", models[0].GetProperty("details").GetProperty("family").GetString());
    }

    [Fact]
    public async Task Ps_and_openai_lists_are_merged_too()
    {
        var ps = (await _client.GetFromJsonAsync<JsonElement>("/api/ps", Cancel)).GetProperty("models").EnumerateArray().ToList();
        var v1 = (await _client.GetFromJsonAsync<JsonElement>("/v1/models", Cancel)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        var unprefixed = (await _client.GetFromJsonAsync<JsonElement>("/models", Cancel)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();

        Assert.Contains(ps, m => m.GetProperty("name").GetString() == "llama3.2:latest" && m.GetProperty("size_vram").GetInt64() == 3340000000);
        // No CLI process waits for a turn here (no spares, no conversation): no Claude model is loaded.
        Assert.DoesNotContain(ps, m => m.GetProperty("name").GetString()!.StartsWith("claude", StringComparison.Ordinal));
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest", "llama3.2:latest"], v1);
        Assert.Equal(v1, unprefixed);
    }

    [Fact]
    public async Task The_version_is_ollamas_when_it_answers()
    {
        var version = await _client.GetFromJsonAsync<JsonElement>("/api/version", Cancel);

        Assert.Equal("0.13.5", version.GetProperty("version").GetString());
    }

    [Fact]
    public async Task A_slow_ollama_leaves_the_lists_answering_in_time_with_the_claude_models()
    {
        _ollama.Server.Given(Request.Create().WithPath("/api/tags").UsingGet())
            .RespondWith(Response.Create().WithDelay(TimeSpan.FromSeconds(10)).WithBody(FakeOllama.Tags));
        var clock = Stopwatch.StartNew();

        var models = (await _client.GetFromJsonAsync<JsonElement>("/api/tags", Cancel)).GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()).ToList();

        // Open WebUI drops every model when the list fails or times out; the Claude models must come in time.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"answered after {clock.Elapsed}");
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"], models);
    }

    [Fact]
    public async Task An_erroring_ollama_leaves_the_lists_with_the_claude_models_and_the_configured_version()
    {
        _ollama.Get("/v1/models", """{"error":"boom"}""", status: 500);
        _ollama.Get("/api/version", "not json at all");

        var v1 = (await _client.GetFromJsonAsync<JsonElement>("/v1/models", Cancel)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        var version = await _client.GetFromJsonAsync<JsonElement>("/api/version", Cancel);

        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"], v1);
        Assert.Equal("0.12.6", version.GetProperty("version").GetString());
    }

    [Fact]
    public async Task Odd_entries_in_ollamas_openai_list_are_passed_on_or_skipped_and_never_fail_the_list()
    {
        _ollama.Get("/v1/models", """
            {"object":"list","data":[
              {"id":5,"object":"model","created":1746405464},
              {"id":"a:latest","object":"model","created":"yesterday"},
              {"id":"b:latest","object":"model","created":99999999999999999},
              {"id":"c\ud800:latest","object":"model","created":1746405464},
              {"id":"llama3.2:latest","object":"model","created":1746405464,"owned_by":"library"}]}
            """);
        using var anthropic = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { { "anthropic-version", "2023-06-01" } } };

        using var openAiAnswer = await _client.GetAsync("/v1/models", Cancel);
        using var anthropicAnswer = await _client.SendAsync(anthropic, Cancel);

        Assert.Equal(HttpStatusCode.OK, openAiAnswer.StatusCode);
        Assert.Equal(8, (await openAiAnswer.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("data").GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, anthropicAnswer.StatusCode);
        var anthropicModels = (await anthropicAnswer.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(
            ["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest", "a:latest", "b:latest", "llama3.2:latest"],
            anthropicModels.Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1746405464), anthropicModels[^1].GetProperty("created_at").GetDateTimeOffset());
    }

    [Fact]
    public async Task A_list_from_ollama_that_is_not_utf8_leaves_the_claude_models()
    {
        byte[] tags = [.. "{\"models\":[{\"name\":\"bad"u8, 0xFF, .. ":latest\"}]}"u8];
        _ollama.Server.Given(Request.Create().WithPath("/api/tags").UsingGet())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody(tags));

        using var answer = await _client.GetAsync("/api/tags", Cancel);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(
            ["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"],
            (await answer.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Claude_names_on_ollama_endpoints_get_answers_of_their_own_and_never_reach_ollama()
    {
        using var pull = await _client.PostAsync("/api/pull", Json("""{"name":"claude-sonnet:latest"}"""), Cancel);
        using var pullOnce = await _client.PostAsync("/api/pull", Json("""{"model":"claude-opus:latest","stream":false}"""), Cancel);
        using var show = await _client.PostAsync("/api/show", Json("""{"model":"claude-haiku:latest"}"""), Cancel);
        using var embed = await _client.PostAsync("/api/embed", Json("""{"model":"claude-sonnet:latest","input":"x"}"""), Cancel);
        using var embeddings = await _client.PostAsync("/v1/embeddings", Json("""{"model":"claude-sonnet:latest","input":"x"}"""), Cancel);
        using var delete = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/api/delete") { Content = Json("""{"model":"claude-sonnet:latest"}""") }, Cancel);
        using var copy = await _client.PostAsync("/api/copy", Json("""{"source":"claude-sonnet:latest","destination":"mine"}"""), Cancel);
        var model = await _client.GetFromJsonAsync<JsonElement>("/v1/models/claude-opus:latest", Cancel);

        Assert.Equal("{\"status\":\"success\"}\n", await pull.Content.ReadAsStringAsync(Cancel));
        Assert.Equal("application/x-ndjson", pull.Content.Headers.ContentType?.MediaType);
        Assert.Equal("success", (await pullOnce.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("status").GetString());
        Assert.Contains("completion", (await show.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(HttpStatusCode.BadRequest, embed.StatusCode);
        Assert.Equal("\"claude-sonnet:latest\" does not support embeddings", (await embed.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
        Assert.Equal("invalid_request_error", (await embeddings.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, delete.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, copy.StatusCode);
        Assert.Equal("claude-opus:latest", model.GetProperty("id").GetString());
        Assert.DoesNotContain(_ollama.Server.LogEntries, e => e.RequestMessage!.Method != "GET");
    }

    /// <summary>
    /// The model is peeked at in what the body's pipe holds, and read from a buffered body when it is further in: either
    /// way the body that reaches Ollama is the client's, byte for byte, and a Claude model is found wherever it stands,
    /// also in a chunked body whose model comes a moment after the rest.
    /// </summary>
    [Theory]
    [InlineData(false, false, 0)]
    [InlineData(false, false, 200_000)]
    [InlineData(true, false, 0)]
    [InlineData(true, false, 200_000)]
    [InlineData(true, true, 0)]
    [InlineData(true, true, 200_000)]
    public async Task The_model_is_found_before_or_after_a_long_history_and_the_body_reaches_ollama_byte_for_byte(bool kestrel, bool chunked, int historyChars)
    {
        _ollama.Server.Given(Request.Create().WithPath("/api/chat").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody("""{"model":"llama3.2","message":{"role":"assistant","content":"from ollama"},"done":true}"""));
        await using var app = GatewayApp.WithFakeCli(kestrel: kestrel, configure: GatewayApp.WithOllama(_ollama.Url));
        using var client = app.CreateClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        string Body(string model) => $$"""{"messages":[{"role":"user","content":"{{new string('x', historyChars)}}"}],"stream":false,"model":"{{model}}"}""";
        async Task<HttpResponseMessage> PostAsync(string model)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = chunked ? new SlowEndContent(Body(model)) : Json(Body(model)) };
            return await client.SendAsync(request, timeout.Token);
        }

        using var ollama = await PostAsync("llama3.2");
        using var claude = await PostAsync("claude-sonnet:latest");

        Assert.Contains("from ollama", await ollama.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.Equal(Body("llama3.2"), _ollama.LastRequestTo("/api/chat").Body);
        Assert.Contains("fake answer", await claude.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.Single(_ollama.Server.LogEntries, e => e.RequestMessage!.Path == "/api/chat");
    }

    [Fact]
    public async Task Claude_and_ollama_traffic_run_side_by_side()
    {
        _ollama.Server.Given(Request.Create().WithPath("/v1/chat/completions").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody("""{"object":"chat.completion","choices":[{"message":{"content":"from ollama"}}]}"""));
        var requests = Enumerable.Range(0, 24).Select(async i =>
        {
            var model = i % 2 == 0 ? "claude-sonnet:latest" : "llama3.2";
            var path = i % 4 < 2 ? "/api/chat" : "/v1/chat/completions";
            using var response = await _client.PostAsync(path, Json($$"""{"model":"{{model}}","stream":false,"messages":[{"role":"user","content":"request {{i}}"}]}"""), Cancel);
            return (Model: model, Path: path, Status: response.StatusCode, Body: await response.Content.ReadAsStringAsync(Cancel));
        });

        var results = await Task.WhenAll(requests);

        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        Assert.All(results.Where(r => r.Model == "claude-sonnet:latest"), r => Assert.Contains("fake answer", r.Body, StringComparison.Ordinal));
        Assert.All(results.Where(r => r.Model == "llama3.2" && r.Path == "/api/chat"), r => Assert.Contains(" is blue.", r.Body, StringComparison.Ordinal));
        Assert.All(results.Where(r => r.Model == "llama3.2" && r.Path != "/api/chat"), r => Assert.Contains("from ollama", r.Body, StringComparison.Ordinal));
        Assert.Equal(12, _ollama.Server.LogEntries.Count(e => e.RequestMessage!.Method == "POST"));
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
        _ollama.Dispose();
    }

    /// <summary>A JSON body of unknown length (sent chunked) whose last 40 bytes, the model among them, follow the rest after a pause.</summary>
    private sealed class SlowEndContent : HttpContent
    {
        private readonly byte[] _body;

        public SlowEndContent(string json)
        {
            _body = Encoding.UTF8.GetBytes(json);
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(_body.AsMemory(0, _body.Length - 40));
            await stream.FlushAsync();
            await Task.Delay(300);
            await stream.WriteAsync(_body.AsMemory(_body.Length - 40));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
