using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.Tests.Ollama;

public sealed class OllamaChatDialectTests
{
    private static readonly ClaudeDialect Dialect = ClaudeDialects.OllamaChat;

    private static List<JsonElement> Lines(string ndjson)
    {
        Assert.EndsWith("\n", ndjson, StringComparison.Ordinal);
        Assert.DoesNotContain("\n\n", ndjson, StringComparison.Ordinal);
        return ndjson.TrimEnd('\n').Split('\n').Select(line => JsonDocument.Parse(line).RootElement).ToList();
    }

    [Fact]
    public void System_messages_become_the_system_prompt_and_the_rest_the_conversation()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"claude-sonnet:latest","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"USER","content":"hi"},
              {"role":"assistant","content":"hello"},
              {"role":"user","content":"again","images":["iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="]}],
             "options":{"temperature":0.2,"num_ctx":4096,"unknown":null},"keep_alive":"5m","think":true}
            """);

        Assert.True(request.Stream);
        Assert.Equal("claude-sonnet:latest", request.RequestedModel);
        Assert.Equal("Be brief.", request.Turn.SystemPrompt);
        Assert.Equal(["user", "assistant", "user"], request.Turn.Messages.Select(m => m.Role));
        Assert.Equal("image/png", Assert.Single(request.Turn.Messages[2].Images!).MediaType);
        Assert.Null(request.Turn.ConversationId);
    }

    [Theory]
    [InlineData("""{"model":"m","id":"chat-7","user":"u","messages":[{"role":"user","content":"x"}]}""", "chat-7")]
    [InlineData("""{"model":"m","user":"u","messages":[{"role":"user","content":"x"}]}""", "u")]
    public void The_original_servers_id_field_and_then_user_keep_a_conversation(string json, string expected)
    {
        Assert.Equal(expected, DialectHarness.Parse(Dialect, json).Turn.ConversationId);
    }

    [Theory]
    [InlineData("{\"model\":\"m\",\"messages\":[]}", "load")]
    [InlineData("{\"model\":\"m\"}", "load")]
    [InlineData("{\"model\":\"m\",\"messages\":[],\"keep_alive\":0}", "unload")]
    public void An_empty_chat_loads_or_unloads_without_running_the_model(string json, string reason)
    {
        var request = Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out var immediate);

        Assert.Null(request);
        var answer = JsonDocument.Parse(immediate!).RootElement;
        Assert.True(answer.GetProperty("done").GetBoolean());
        Assert.Equal(reason, answer.GetProperty("done_reason").GetString());
        Assert.Equal("", answer.GetProperty("message").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("", "missing request body")]
    [InlineData("{\"messages\":[]}", "model is required")]
    [InlineData("{\"model\":\"claude-sonnet:latest\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "does not support tools")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "invalid role")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"format\":42}", "invalid format")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"bm90IGFuIGltYWdl\"]}]}", "images must be")]
    [InlineData("{\"model\": 12}", "invalid JSON")]
    public void A_bad_request_is_refused_with_a_clear_message(string json, string expected)
    {
        var exception = Assert.Throws<DialectRequestException>(() => Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out _));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, exception.Status);
    }

    [Fact]
    public void Json_format_asks_for_json_in_the_system_prompt()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","messages":[{"role":"user","content":"x"}],"format":{"type":"object"}}""");

        Assert.Contains("valid JSON", request.Turn.SystemPrompt, StringComparison.Ordinal);
        Assert.Contains("{\"type\":\"object\"}", request.Turn.SystemPrompt, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_streamed_answer_is_ndjson_ending_in_one_done_chunk_with_the_clis_real_numbers()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}""");

        var lines = Lines(await DialectHarness.StreamAsync(Dialect, request, "print_stream_json_partial"));

        Assert.All(lines, line =>
        {
            Assert.Equal("claude-sonnet:latest", line.GetProperty("model").GetString());
            Assert.Equal("assistant", line.GetProperty("message").GetProperty("role").GetString());
            Assert.Equal(JsonValueKind.String, line.GetProperty("message").GetProperty("content").ValueKind);
            Assert.True(DateTimeOffset.TryParse(line.GetProperty("created_at").GetString(), out _));
            Assert.Matches("(Z|[+-]\\d\\d:\\d\\d)$", line.GetProperty("created_at").GetString()!);
        });
        Assert.Equal("Hello, streaming world!", string.Concat(lines.Select(l => l.GetProperty("message").GetProperty("content").GetString())));
        Assert.Single(lines, l => l.GetProperty("done").GetBoolean());
        var done = lines[^1];
        Assert.True(done.GetProperty("done").GetBoolean());
        Assert.Equal("stop", done.GetProperty("done_reason").GetString());
        Assert.Equal(3173, done.GetProperty("prompt_eval_count").GetInt64());
        Assert.Equal(13, done.GetProperty("eval_count").GetInt64());
        foreach (var metric in (string[])["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"])
        {
            Assert.True(done.GetProperty(metric).GetInt64() > 0, metric);
        }
    }

    [Fact]
    public async Task Thinking_goes_in_message_thinking()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","messages":[{"role":"user","content":"x"}]}""");

        var lines = Lines(await DialectHarness.StreamAsync(Dialect, request, "thinking_block_stream_json_partial"));

        Assert.Equal("Let me think about this.", lines[0].GetProperty("message").GetProperty("thinking").GetString());
        Assert.Equal("", lines[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_failure_mid_stream_ends_with_an_error_line()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","messages":[{"role":"user","content":"x"}]}""");
        var crashed = new ClaudeBackendError(ClaudeErrorKind.CliFailed, "The Claude CLI crashed");

        var lines = Lines(await DialectHarness.StreamAsync(Dialect, request, Fixtures().Take(5), crashed));

        Assert.Equal("The Claude CLI crashed", lines[^1].GetProperty("error").GetString());
        Assert.DoesNotContain(lines, l => l.TryGetProperty("done", out var done) && done.GetBoolean());
    }

    private static string[] Fixtures() => TestSupport.Fixtures.StdoutLines("print_stream_json_partial");
}
