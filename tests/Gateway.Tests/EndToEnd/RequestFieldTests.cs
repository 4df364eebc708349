using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpenAI;
using OpenAI.Chat;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>
/// A request's fields beyond its messages, through the real CLI to the fake API: what reached the Anthropic API (the
/// fake's log) and what the client got.
/// </summary>
public sealed class RequestFieldTests
{
    private const string Weather = "weather\ncall:StructuredOutput:{\"city\":\"Paris\",\"temp\":21}";
    private const string WeatherSchema = """{"type":"object","properties":{"city":{"type":"string"},"temp":{"type":"number"}},"required":["city","temp"]}""";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_openai_sdks_output_limit_and_effort_reach_the_api_and_its_temperature_is_reported_as_ignored()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var http = app.CreateClient();
        var chat = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1") });

#pragma warning disable OPENAI001 // reasoning effort is the SDK's evaluation API, and what the test is about
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 77, ReasoningEffortLevel = ChatReasoningEffortLevel.Low, Temperature = 0.3f };
#pragma warning restore OPENAI001
        var completion = await chat.CompleteChatAsync(
            [new UserChatMessage("hello")],
            options,
            Cancel);

        Assert.Equal("hello", completion.Value.Content[0].Text);
        Assert.Equal("temperature", completion.GetRawResponse().Headers.TryGetValue("x-claudeproxy-ignored", out var ignored) ? ignored : null);
        var sent = Assert.Single(api.MessageRequests());
        Assert.Equal(77, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal("low", sent.GetProperty("output_config").GetProperty("effort").GetString());
    }

    [Fact]
    public async Task Ollamas_think_false_and_num_predict_reach_the_api_and_the_next_turn_on_the_same_process_is_back_to_the_defaults()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);
        using var client = app.CreateClient();

        using var first = await client.PostAsync("/api/chat", Json("""
            {"model":"claude-sonnet:latest","id":"fields-1","stream":false,"think":false,"options":{"num_predict":33,"top_k":4},
             "messages":[{"role":"user","content":"one"}]}
            """), Cancel);
        using var second = await client.PostAsync("/api/chat", Json("""
            {"model":"claude-sonnet:latest","id":"fields-1","stream":false,"messages":[{"role":"user","content":"two"}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("options.top_k", first.Headers.GetValues("x-claudeproxy-ignored").Single());
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var sent = api.MessageRequestsWithSession();
        Assert.Equal(2, sent.Count);
        // One CLI session (the kept process), whose settings the second turn put back.
        Assert.Equal(sent[0].SessionId, sent[1].SessionId);
        Assert.Equal((33, "disabled"), (sent[0].Body.GetProperty("max_tokens").GetInt32(), sent[0].Body.GetProperty("thinking").GetProperty("type").GetString()));
        Assert.Equal((64000, "adaptive"), (sent[1].Body.GetProperty("max_tokens").GetInt32(), sent[1].Body.GetProperty("thinking").GetProperty("type").GetString()));
    }

    [Fact]
    public async Task An_ollama_format_schema_gets_the_models_structured_output_as_the_answer()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "agent");
        await using var app = GatewayApp.WithRealCli(api);

        using var response = await app.CreateClient().PostAsync("/api/chat", Json($$"""
            {"model":"claude-sonnet:latest","stream":false,"format":{{WeatherSchema}},"messages":[{"role":"user","content":{{JsonSerializer.Serialize(Weather)}}}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal("""{"city":"Paris","temp":21}""", answer);
        var sent = Assert.Single(api.MessageRequests());
        var tool = Assert.Single(sent.GetProperty("tools").EnumerateArray());
        Assert.Equal("StructuredOutput", tool.GetProperty("name").GetString());
        Assert.Equal(JsonSerializer.Serialize(JsonDocument.Parse(WeatherSchema).RootElement.GetProperty("required")), JsonSerializer.Serialize(tool.GetProperty("input_schema").GetProperty("required")));
    }

    [Fact]
    public async Task An_answer_that_does_not_match_the_openai_json_schema_is_an_error_not_content_streamed_or_not()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "agent");
        await using var app = GatewayApp.WithRealCli(api);
        using var client = app.CreateClient();
        var body = $$$"""
            {"model":"claude-sonnet:latest","response_format":{"type":"json_schema","json_schema":{"name":"w","strict":true,"schema":{{{WeatherSchema}}}}},
             "messages":[{"role":"user","content":{{{JsonSerializer.Serialize(Weather.Replace("21", "\"hot\"", StringComparison.Ordinal))}}}}]
            """;

        using var whole = await client.PostAsync("/v1/chat/completions", Json(body + "}"), Cancel);
        var (streamed, frames) = await PostAndReadLinesAsync(client, "/v1/chat/completions", Json(body + ""","stream":true}"""), Cancel);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, whole.StatusCode);
        var error = (await whole.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error");
        Assert.Equal("invalid_output", error.GetProperty("code").GetString());
        Assert.Contains("structured-output-enforce", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        // Streamed, nothing was answered before the check: the client gets the same status, not a stream with content.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, streamed.StatusCode);
        Assert.DoesNotContain(frames, f => f.Text.Contains("\"content\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_responses_apis_output_limit_reasoning_effort_and_text_format_reach_the_cli()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "agent");
        await using var app = GatewayApp.WithRealCli(api);

        using var response = await app.CreateClient().PostAsync("/v1/responses", Json($$$"""
            {"model":"claude-sonnet:latest","max_output_tokens":900,"reasoning":{"effort":"medium"},
             "text":{"format":{"type":"json_schema","name":"weather","strict":true,"schema":{{{WeatherSchema}}}}},
             "input":{{{JsonSerializer.Serialize(Weather)}}}}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var message = body.GetProperty("output").EnumerateArray().Single(item => item.GetProperty("type").GetString() == "message");
        Assert.Equal("""{"city":"Paris","temp":21}""", message.GetProperty("content")[0].GetProperty("text").GetString());
        var sent = Assert.Single(api.MessageRequests());
        Assert.Equal(900, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal("medium", sent.GetProperty("output_config").GetProperty("effort").GetString());
        Assert.Equal("StructuredOutput", Assert.Single(sent.GetProperty("tools").EnumerateArray()).GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_kept_process_whose_answer_failed_the_schema_is_ended_not_kept_for_the_next_turn()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "agent");
        await using var app = GatewayApp.WithRealCli(api);
        using var recycled = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.recycled");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json($$"""
            {"model":"claude-sonnet:latest","id":"schema-1","stream":false,"format":{{WeatherSchema}},
             "messages":[{"role":"user","content":{{JsonSerializer.Serialize(Weather.Replace("21", "\"hot\"", StringComparison.Ordinal))}}}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("unclean", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
    }

    [Fact]
    public async Task A_stop_sequence_ends_the_stream_before_it_and_the_interrupted_process_takes_the_conversations_next_turn()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:alpha beta STOP gamma delta", "--chunk-chars", "3", "--chunk-delay-ms", "50");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var client = app.CreateClient();
        using var turns = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, "claudeproxy.cli.turns");

        var (response, frames) = await PostAndReadLinesAsync(client, "/v1/chat/completions", Json("""
            {"model":"claude-sonnet:latest","user":"stop-1","stream":true,"stop":["STOP","never"],"messages":[{"role":"user","content":"go"}]}
            """), Cancel);
        using var next = await client.PostAsync("/v1/chat/completions", Json("""
            {"model":"claude-sonnet:latest","user":"stop-1","messages":[{"role":"user","content":"again"}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var chunks = frames.SseData();
        var text = string.Concat(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.Equal("alpha beta ", text);
        Assert.Contains(chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()), c => c.GetProperty("finish_reason").GetString() == "stop");
        Assert.Equal("data: [DONE]", frames[^1].Text);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        var sent = api.MessageRequestsWithSession();
        Assert.Equal(2, sent.Count);
        Assert.Equal(sent[0].SessionId, sent[1].SessionId);
        // The interrupted process itself took the next turn.
        Assert.Equal(["cold", "kept"], turns.GetMeasurementSnapshot().Select(m => m.Tags["start"]));
    }

    [Fact]
    public async Task In_strict_mode_a_field_that_would_be_ignored_is_refused_naming_it()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: settings => settings["Dialects:RefuseIgnoredFields"] = "true");

        using var response = await app.CreateClient().PostAsync("/v1/chat/completions", Json("""
            {"model":"claude-sonnet:latest","temperature":0.2,"messages":[{"role":"user","content":"x"}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("temperature", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(api.MessageRequests());
    }

    [Fact]
    public async Task The_anthropic_apis_max_tokens_stop_sequences_and_disabled_thinking_reach_the_cli()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:one two END three");
        await using var app = GatewayApp.WithRealCli(api);

        using var response = await app.CreateClient().PostAsync("/v1/messages", Json("""
            {"model":"claude-sonnet:latest","max_tokens":500,"stop_sequences":["END"],"messages":[{"role":"user","content":"go"}]}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.Equal("one two ", message.GetProperty("content")[0].GetProperty("text").GetString());
        var sent = Assert.Single(api.MessageRequests());
        Assert.Equal(500, sent.GetProperty("max_tokens").GetInt32());
        // The API thinks only when asked to.
        Assert.Equal("disabled", sent.GetProperty("thinking").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Ps_lists_the_waiting_processes_with_their_memory_and_keep_alive_sets_when_a_kept_one_expires_or_ends_it()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: settings =>
        {
            settings["ClaudeBackend:Models:0:WarmSpares"] = "1";
            settings["ClaudeBackend:Models:0:MaxWarmSpares"] = "1";
        });
        using var client = app.CreateClient();

        var spare = await LoadedAsync(client, "claude-sonnet:latest", present: true);
        var before = DateTimeOffset.UtcNow;
        using var kept = await client.PostAsync("/api/chat", Json("""
            {"model":"claude-haiku:latest","id":"ps-1","stream":false,"keep_alive":"5m","messages":[{"role":"user","content":"one"}]}
            """), Cancel);
        var haiku = await LoadedAsync(client, "claude-haiku:latest", present: true);
        using var ended = await client.PostAsync("/api/chat", Json("""
            {"model":"claude-haiku:latest","id":"ps-1","stream":false,"keep_alive":0,"messages":[{"role":"user","content":"two"}]}
            """), Cancel);
        await LoadedAsync(client, "claude-haiku:latest", present: false);

        // A spare waits until it is needed; its resident memory is the model's size, nothing is in VRAM.
        Assert.True(spare!.Value.GetProperty("size").GetInt64() > 10_000_000);
        Assert.Equal(0, spare.Value.GetProperty("size_vram").GetInt64());
        Assert.True(spare.Value.GetProperty("expires_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddYears(100));
        Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        Assert.True(haiku!.Value.GetProperty("size").GetInt64() > 10_000_000);
        var expires = haiku.Value.GetProperty("expires_at").GetDateTimeOffset();
        Assert.InRange(expires, before.AddMinutes(5), DateTimeOffset.UtcNow.AddMinutes(5).AddSeconds(5));
        Assert.Equal(HttpStatusCode.OK, ended.StatusCode);
    }

    /// <summary>Polls <c>/api/ps</c> until <paramref name="model"/> is listed (or gone); the entry, when listed.</summary>
    private static async Task<JsonElement?> LoadedAsync(HttpClient client, string model, bool present)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var ps = await client.GetFromJsonAsync<JsonElement>("/api/ps", Cancel);
            JsonElement? entry = ps.GetProperty("models").EnumerateArray().Where(m => m.GetProperty("name").GetString() == model).Select(m => (JsonElement?)m).FirstOrDefault();
            if (entry.HasValue == present)
            {
                return entry;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{model} was {(present ? "never listed" : "still listed")} in /api/ps: {ps}");
            await Task.Delay(200, Cancel);
        }
    }
}
