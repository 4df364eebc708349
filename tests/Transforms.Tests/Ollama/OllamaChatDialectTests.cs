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
    [InlineData("{\"model\":\"claude-sonnet:latest\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "needs a function with a name")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "invalid role")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"format\":42}", "invalid format")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"bm90IGFuIGltYWdl\"]}]}", "images must be")]
    [InlineData("{\"model\": 12}", "invalid JSON")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"think\":\"wild\"}", "invalid think")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"options\":{\"num_predict\":0}}", "num_predict' must be a positive")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"keep_alive\":\"soon\"}", "invalid keep_alive")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"keep_alive\":\"NaN\"}", "invalid keep_alive")]
    public void A_bad_request_is_refused_with_a_clear_message(string json, string expected)
    {
        var exception = Assert.Throws<DialectRequestException>(() => Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out _));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, exception.Status);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"city":{"type":"string"}}}""", """{"type":"object","properties":{"city":{"type":"string"}}}""")]
    [InlineData("\"json\"", """{"type":"object"}""")]
    public void Format_becomes_the_schema_the_answer_must_match_not_a_prompt(string format, string schema)
    {
        var request = DialectHarness.Parse(Dialect, $$"""{"model":"m","messages":[{"role":"user","content":"x"}],"format":{{format}}}""");

        Assert.Equal(schema, request.Turn.Options!.OutputSchema!.Value.GetRawText());
        Assert.Null(request.Turn.SystemPrompt);
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
    public async Task Thinking_goes_in_message_thinking_when_the_client_asks_to_think()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","think":true,"messages":[{"role":"user","content":"x"}]}""");

        var lines = Lines(await DialectHarness.StreamAsync(Dialect, request, "thinking_block_stream_json_partial"));

        Assert.Equal("Let me think about this.", lines[0].GetProperty("message").GetProperty("thinking").GetString());
        Assert.Equal("", lines[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Thinking_never_reaches_a_client_that_did_not_ask_for_it()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","messages":[{"role":"user","content":"x"}]}""");

        var lines = Lines(await DialectHarness.StreamAsync(Dialect, request, "thinking_block_stream_json_partial"));

        Assert.All(lines, line => Assert.False(line.GetProperty("message").TryGetProperty("thinking", out _)));
        Assert.Null(request.Turn.Options);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("\"5m\"", 300)]
    [InlineData("-1", null)]
    [InlineData("1e300", null)]
    [InlineData("\"99999999999999h\"", null)]
    public void Keep_alive_is_a_duration_and_anything_longer_than_time_can_hold_is_for_ever(string keepAlive, int? seconds)
    {
        var request = DialectHarness.Parse(Dialect, $$"""{"model":"m","keep_alive":{{keepAlive}},"messages":[{"role":"user","content":"x"}]}""");

        Assert.Equal(seconds is { } s ? TimeSpan.FromSeconds(s) : TimeSpan.MaxValue, request.Turn.Options!.KeepAlive);
    }

    [Theory]
    [InlineData("true", null, null)]
    [InlineData("false", null, false)]
    [InlineData("\"high\"", "high", null)]
    [InlineData("\"max\"", "max", null)]
    public void Think_sets_the_effort_or_turns_thinking_off(string think, string? effort, bool? thinking)
    {
        var request = DialectHarness.Parse(Dialect, $$"""{"model":"m","think":{{think}},"messages":[{"role":"user","content":"x"}]}""");

        Assert.Equal(effort, request.Turn.Options?.Effort);
        Assert.Equal(thinking, request.Turn.Options?.Thinking);
        Assert.Equal(think != "false", request.ShowThinking);
    }

    [Fact]
    public void Options_num_predict_and_stop_are_honoured_and_sampling_knobs_are_reported_as_ignored()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"m","messages":[{"role":"user","content":"x"}],"keep_alive":"1h30m",
             "options":{"num_predict":64,"stop":["\n\n","END"],"temperature":0.2,"top_k":5,"num_ctx":8192,"t\u00e9mp\nx":1}}
            """);

        Assert.Equal(64, request.Turn.Options!.MaxOutputTokens);
        Assert.Equal(["\n\n", "END"], request.Turn.Options.StopSequences);
        Assert.Equal(TimeSpan.FromMinutes(90), request.Turn.Options.KeepAlive);
        // A client's own option name is named in header-safe characters.
        Assert.Equal(["options.temperature", "options.top_k", "options.num_ctx", "options.t_mp_x"], request.Ignored);
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

    [Fact]
    public void A_result_without_an_id_answers_the_call_of_its_function_and_calls_without_ids_get_ones_by_place()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"claude-sonnet:latest","tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
             "messages":[{"role":"user","content":"go"},
                         {"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{"x":1}}},{"function":{"name":"b","arguments":{}}}]},
                         {"role":"tool","tool_name":"b","content":"B"},
                         {"role":"tool","content":"A"}]}
            """);

        var calls = request.Turn.Messages[1].ToolCalls!;
        Assert.Equal([("a", """{"x":1}"""), ("b", "{}")], calls.Select(c => (c.Name, c.Arguments)));
        Assert.Equal([(calls[1].Id, "B"), (calls[0].Id, "A")], request.Turn.Messages[2].ToolResults!.Select(r => (r.ToolCallId, r.Content)));
    }

    [Fact]
    public async Task Each_call_streams_whole_in_a_chunk_of_its_own_and_the_stream_ends_done()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}""");
        var lines = ClaudeProxy.TestSupport.Fixtures.StdoutLines("client_tools").TakeWhile(line => !line.Contains("\"tool_result\"", StringComparison.Ordinal));

        var chunks = (await DialectHarness.StreamAsync(Dialect, request, lines)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

        var calls = chunks.Where(c => c.GetProperty("message").TryGetProperty("tool_calls", out _)).ToList();
        Assert.Equal(2, calls.Count);
        Assert.All(calls, c => Assert.False(c.GetProperty("done").GetBoolean()));
        var first = calls[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal("Paris", first.GetProperty("function").GetProperty("arguments").GetProperty("city").GetString());
        Assert.Equal(1, calls[1].GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("index").GetInt32());
        Assert.StartsWith("toolu_", first.GetProperty("id").GetString());
        Assert.True(chunks[^1].GetProperty("done").GetBoolean());
        Assert.Equal("stop", chunks[^1].GetProperty("done_reason").GetString());
    }

    [Fact]
    public void Generate_refuses_a_suffix_and_reports_raw_template_and_context_as_ignored()
    {
        var refused = Assert.Throws<DialectRequestException>(() =>
            ClaudeDialects.OllamaGenerate.Parse(Encoding.UTF8.GetBytes("""{"model":"m","prompt":"def f(","suffix":"return x"}"""), TimeProvider.System, out _));
        var request = DialectHarness.Parse(ClaudeDialects.OllamaGenerate, """{"model":"m","prompt":"x","raw":true,"template":"{{ .Prompt }}","context":[1,2],"think":"low"}""");

        Assert.Equal("suffix", refused.Param);
        Assert.Equal(["raw", "template", "context"], request.Ignored);
        Assert.Equal("low", request.Turn.Options!.Effort);
        Assert.True(request.ShowThinking);
    }
}
