using System.Buffers;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Transforms.Tests.Anthropic;

public sealed class AnthropicMessagesDialectTests
{
    private static readonly ClaudeDialect Dialect = ClaudeDialects.AnthropicMessages;


    [Fact]
    public void System_blocks_images_calls_and_results_come_to_the_backend_as_they_were()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"claude-sonnet:latest","max_tokens":100,"stream":true,
             "system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind.","cache_control":{"type":"ephemeral"}}],
             "tools":[{"name":"get_weather","description":"weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true},
             "messages":[{"role":"user","content":[{"type":"text","text":"weather?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}}]},
                         {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":""},{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}}]},
                         {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny"}]}]}]}
            """);

        Assert.True(request.Stream);
        Assert.StartsWith("Be brief.\n\nBe kind.", request.Turn.SystemPrompt);
        Assert.Contains("You must call at least one of the functions", request.Turn.SystemPrompt);
        Assert.Contains("at most one function at a time", request.Turn.SystemPrompt);
        Assert.Equal("get_weather", Assert.Single(request.Turn.Tools!).Name);
        Assert.Equal("image/png", Assert.Single(request.Turn.Messages[0].Images!).MediaType);
        Assert.Equal("Let me check.", request.Turn.Messages[1].Text);
        Assert.Equal(("toolu_1", "get_weather", """{"city":"Oslo"}"""), Assert.Single(request.Turn.Messages[1].ToolCalls!) is var call ? (call.Id, call.Name, call.Arguments) : default);
        Assert.Equal(new ClaudeToolResult("toolu_1", "sunny"), Assert.Single(request.Turn.Messages[2].ToolResults!));
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model: Field required")]
    [InlineData("""{"model":"m","messages":[{"role":"system","content":"x"}]}""", "role 'system'")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}""", "'document' is not supported")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}""", "Anthropic's own tools")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}],"tool_choice":{"type":"tool","name":"g"}}""", "'g', which is not among the tools")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}""", "invalid content block")]
    public void A_bad_request_is_refused_with_a_clear_message(string json, string expected)
    {
        var exception = Assert.Throws<DialectRequestException>(() => Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out _));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Thinking_then_text_streams_as_two_blocks_between_message_start_and_message_stop()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","stream":true,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"x"}]}""");

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(Dialect, request, "thinking_block_stream_json_partial"));

        Assert.Equal(["message_start", "ping", "content_block_start"], frames.Take(3).Select(f => f.Event));
        Assert.Equal("message", frames[0].Data.GetProperty("message").GetProperty("type").GetString());
        var starts = frames.Where(f => f.Event == "content_block_start").Select(f => (f.Data.GetProperty("index").GetInt32(), f.Data.GetProperty("content_block").GetProperty("type").GetString())).ToList();
        Assert.Equal([(0, "thinking"), (1, "text")], starts);
        Assert.Equal([0, 1], frames.Where(f => f.Event == "content_block_stop").Select(f => f.Data.GetProperty("index").GetInt32()));
        Assert.All(frames.Where(f => f.Event == "content_block_delta"), f => Assert.Equal(f.Data.GetProperty("delta").GetProperty("type").GetString() == "thinking_delta" ? 0 : 1, f.Data.GetProperty("index").GetInt32()));
        Assert.Equal(["message_delta", "message_stop"], frames.TakeLast(2).Select(f => f.Event));
        Assert.Equal("end_turn", frames[^2].Data.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.True(frames[^2].Data.GetProperty("usage").GetProperty("output_tokens").GetInt64() > 0);
    }

    [Fact]
    public async Task A_round_of_calls_streams_as_tool_use_blocks_with_their_input_and_stops_for_tool_use()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"x"}]}""");
        var lines = Fixtures.StdoutLines("client_tools").TakeWhile(line => !line.Contains("\"tool_result\"", StringComparison.Ordinal));

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(Dialect, request, lines));

        var blocks = frames.Where(f => f.Event == "content_block_start").Select(f => f.Data.GetProperty("content_block")).ToList();
        Assert.Equal(["tool_use", "tool_use"], blocks.Select(b => b.GetProperty("type").GetString()));
        Assert.Equal(["get_weather", "get_weather"], blocks.Select(b => b.GetProperty("name").GetString()));
        Assert.Equal(["""{"city":"Paris"}""", """{"city":"Oslo"}"""], frames.Where(f => f.Event == "content_block_delta").Select(f => f.Data.GetProperty("delta").GetProperty("partial_json").GetString()));
        Assert.Equal("tool_use", frames[^2].Data.GetProperty("delta").GetProperty("stop_reason").GetString());
    }

    [Fact]
    public void A_whole_answer_with_calls_has_tool_use_blocks_with_their_input_as_objects()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}""");
        var result = new ClaudeTurnResult("Let me check.", "tool_use", new ClaudeUsage(10, 5, 2, 0), 0, default, null, "claude-sonnet-5", [new ClaudeToolCall("toolu_1", "get_weather", """{"city":"Oslo"}""")]);
        var output = new ArrayBufferWriter<byte>();

        Dialect.CreateWriter(request, DialectHarness.Services(), TimeProvider.System.GetTimestamp()).WriteAnswer(result, "", output);

        var answer = JsonDocument.Parse(output.WrittenMemory).RootElement;
        Assert.Equal("message", answer.GetProperty("type").GetString());
        Assert.Equal("tool_use", answer.GetProperty("stop_reason").GetString());
        Assert.Equal(["text", "tool_use"], answer.GetProperty("content").EnumerateArray().Select(b => b.GetProperty("type").GetString()));
        Assert.Equal("Oslo", answer.GetProperty("content")[1].GetProperty("input").GetProperty("city").GetString());
        Assert.Equal(2, answer.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt64());
    }

    [Fact]
    public void Count_tokens_is_an_estimate_from_every_string_of_the_request()
    {
        var body = Encoding.UTF8.GetBytes("""{"model":"claude-sonnet:latest","system":"12345678","messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}]}""");

        var answer = JsonDocument.Parse(Transforms.Anthropic.AnthropicTokenEstimate.Answer(body)!).RootElement;

        // "12345678", "user" and "abcd": 16 bytes, 4 tokens.
        Assert.Equal(4, answer.GetProperty("input_tokens").GetInt64());
    }

    [Fact]
    public async Task A_client_that_did_not_ask_for_thinking_gets_the_text_alone()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"x"}]}""");

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(Dialect, request, "thinking_block_stream_json_partial"));

        Assert.Equal(["text"], frames.Where(f => f.Event == "content_block_start").Select(f => f.Data.GetProperty("content_block").GetProperty("type").GetString()));
        Assert.Equal(0, frames.Single(f => f.Event == "content_block_start").Data.GetProperty("index").GetInt32());
    }

    [Fact]
    public void A_tool_result_with_an_image_is_taken_with_a_note_and_the_words_beside_it_kept()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"m","tools":[{"name":"read"}],"messages":[{"role":"user","content":"look"},
             {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"read","input":{}}]},
             {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},{"type":"text","text":"also, hurry"}]}]}
            """);

        var last = request.Turn.Messages[^1];
        Assert.Contains("[image returned by the tool", Assert.Single(last.ToolResults!).Content);
        Assert.Equal("also, hurry", last.Text);
    }

    [Fact]
    public void Count_tokens_takes_an_image_at_a_fixed_count_whatever_its_size()
    {
        var image = Convert.ToBase64String(new byte[300_000]);
        var body = Encoding.UTF8.GetBytes($$$"""{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"{{{image}}}"}}]}]}""");

        var answer = JsonDocument.Parse(Transforms.Anthropic.AnthropicTokenEstimate.Answer(body)!).RootElement;

        Assert.InRange(answer.GetProperty("input_tokens").GetInt64(), 1_600, 1_610);
    }
}
