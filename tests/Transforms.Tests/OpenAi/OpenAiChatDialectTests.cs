using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Transforms.Tests.OpenAi;

public sealed class OpenAiChatDialectTests
{
    private static readonly ClaudeDialect Dialect = ClaudeDialects.OpenAiChat;

    /// <summary>The SSE frames' data, checking the framing on the way.</summary>
    private static List<string> Frames(string sse)
    {
        Assert.EndsWith("\n\n", sse, StringComparison.Ordinal);
        var frames = sse[..^2].Split("\n\n");
        Assert.All(frames, frame => Assert.StartsWith("data: ", frame, StringComparison.Ordinal));
        return frames.Select(frame => frame["data: ".Length..]).ToList();
    }

    [Fact]
    public void Content_parts_images_and_developer_messages_are_understood()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"claude-sonnet:latest","user":"alice","max_completion_tokens":50,"n":1,"messages":[
              {"role":"developer","content":"Be brief."},
              {"role":"user","content":[{"type":"text","text":"what is"},{"type":"text","text":"this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="}}]}]}
            """);

        Assert.False(request.Stream);
        Assert.Equal("Be brief.", request.Turn.SystemPrompt);
        Assert.Equal("what is\nthis?", request.Turn.Messages[0].Text);
        Assert.Equal("image/png", Assert.Single(request.Turn.Messages[0].Images!).MediaType);
        Assert.Equal("alice", request.Turn.ConversationId);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[]}""", "too short")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}""", "data URL")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","content":"42"}]}""", "tool_call_id")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}""", "'g', which is not among the tools")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}""", "only 'function'")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":42}]}""", "content must be")]
    public void A_bad_request_is_refused_with_a_clear_message(string json, string expected)
    {
        var exception = Assert.Throws<DialectRequestException>(() => Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out _));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_has_role_first_then_a_finish_chunk_a_usage_chunk_and_done()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}""");

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, "print_stream_json_partial"));

        Assert.Equal("[DONE]", frames[^1]);
        var chunks = frames[..^1].Select(f => JsonDocument.Parse(f).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var content = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _))
            .Select(d => d.GetProperty("content").GetString());
        Assert.Equal("Hello, streaming world!", string.Concat(content));
        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal("stop", finish.GetProperty("finish_reason").GetString());
        Assert.Empty(finish.GetProperty("delta").EnumerateObject());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(3173, chunks[^1].GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(13, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt64());
        Assert.Equal(3186, chunks[^1].GetProperty("usage").GetProperty("total_tokens").GetInt64());
        Assert.All(chunks[..^2], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
    }

    [Fact]
    public async Task Without_include_usage_there_is_no_usage_chunk()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}""");

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, "print_stream_json_partial"));

        Assert.DoesNotContain(frames, f => f.Contains("\"usage\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failure_mid_stream_is_an_error_frame_the_sdks_raise()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}""");
        var backend = TestSupport.Fixtures.StdoutLines("print_stream_json_partial").Take(5);

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, backend, new ClaudeBackendError(ClaudeErrorKind.RateLimited, "slow down")));

        var error = JsonDocument.Parse(frames[^1]).RootElement.GetProperty("error");
        Assert.Equal("slow down", error.GetProperty("message").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal("rate_limited", error.GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", frames);
    }

    [Fact]
    public void Calls_and_their_results_come_to_the_backend_as_one_assistant_message_and_one_message_of_results()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"m","tool_choice":"required","parallel_tool_calls":false,
             "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                      {"type":"function","function":{"name":"now"}}],
             "messages":[{"role":"user","content":"weather?"},
                         {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
                                                                          {"id":"call_2","type":"function","function":{"name":"now","arguments":""}}]},
                         {"role":"tool","tool_call_id":"call_1","content":"sunny"},
                         {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"noon"}]}]}
            """);

        Assert.Equal(["get_weather", "now"], request.Turn.Tools!.Select(t => t.Name));
        Assert.Equal("object", request.Turn.Tools![1].Parameters.GetProperty("type").GetString());
        Assert.Equal(3, request.Turn.Messages.Count);
        Assert.Equal([("call_1", "get_weather", """{"city":"Oslo"}"""), ("call_2", "now", "{}")], request.Turn.Messages[1].ToolCalls!.Select(c => (c.Id, c.Name, c.Arguments)));
        Assert.Equal([("call_1", "sunny"), ("call_2", "noon")], request.Turn.Messages[2].ToolResults!.Select(r => (r.ToolCallId, r.Content)));
        Assert.Contains("You must call at least one of the functions", request.Turn.SystemPrompt);
        Assert.Contains("at most one function at a time", request.Turn.SystemPrompt);
    }

    [Fact]
    public async Task A_round_of_calls_streams_as_the_openai_api_streams_it_and_finishes_with_tool_calls()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}""");
        var lines = Fixtures.StdoutLines("client_tools").TakeWhile(line => !line.Contains("\"tool_result\"", StringComparison.Ordinal));

        var frames = (await DialectHarness.StreamAsync(Dialect, request, lines)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        var chunks = frames.Where(f => f != "data: [DONE]").Select(f => JsonDocument.Parse(f["data: ".Length..]).RootElement.GetProperty("choices")[0]).ToList();
        var calls = chunks.Where(c => c.GetProperty("delta").TryGetProperty("tool_calls", out _)).Select(c => c.GetProperty("delta").GetProperty("tool_calls")[0]).ToList();
        Assert.Equal(4, calls.Count);
        Assert.Equal([0, 0, 1, 1], calls.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal("get_weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("function", calls[0].GetProperty("type").GetString());
        Assert.StartsWith("toolu_", calls[0].GetProperty("id").GetString());
        Assert.Equal("""{"city":"Oslo"}""", calls[3].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("tool_calls", chunks[^1].GetProperty("finish_reason").GetString());
        Assert.Equal("data: [DONE]", frames[^1]);
    }

    [Fact]
    public void Limits_stops_effort_and_a_json_schema_are_honoured_and_sampling_knobs_reported()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":10,"max_completion_tokens":20,"stop":"END",
             "reasoning_effort":"minimal","temperature":0.1,"top_p":0.9,"seed":7,
             "response_format":{"type":"json_schema","json_schema":{"name":"w","strict":true,"schema":{"type":"object"}}}}
            """);

        var options = request.Turn.Options!;
        Assert.Equal(20, options.MaxOutputTokens);
        Assert.Equal(["END"], options.StopSequences);
        Assert.Equal("low", options.Effort);
        Assert.Null(options.Thinking);
        Assert.True(request.ShowThinking);
        Assert.Equal("""{"type":"object"}""", options.OutputSchema!.Value.GetRawText());
        Assert.Equal(["temperature", "top_p", "seed"], request.Ignored);
    }

    [Theory]
    [InlineData("\"n\":2", "n")]
    [InlineData("\"logprobs\":true", "logprobs")]
    [InlineData("\"top_logprobs\":3", "top_logprobs")]
    [InlineData("\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}", "audio")]
    [InlineData("\"modalities\":[\"text\",\"audio\"]", "modalities")]
    [InlineData("\"reasoning_effort\":\"extreme\"", "reasoning_effort")]
    [InlineData("\"stop\":[\"\"]", "stop")]
    [InlineData("\"response_format\":{\"type\":\"yaml\"}", "response_format")]
    public void A_field_the_cli_cannot_honour_is_refused_naming_it(string field, string param)
    {
        var exception = Assert.Throws<DialectRequestException>(() =>
            Dialect.Parse(Encoding.UTF8.GetBytes($$"""{"model":"m","messages":[{"role":"user","content":"x"}],{{field}}}"""), TimeProvider.System, out _));

        Assert.Equal(param, exception.Param);
        Assert.Contains(param, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fields_the_gateway_does_not_read_are_named_as_ignored_in_header_safe_form()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"m","messages":[{"role":"user","content":"x"}],"service_tier":"flex","prediction":{"type":"content","content":"x"},"we\nird key":1,"metadata":null}
            """);

        Assert.Equal(["service_tier", "prediction", "we_ird_key"], request.Ignored);
    }
}
