using System.Buffers;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Transforms.Tests.OpenAi;

public sealed class OpenAiResponsesDialectTests
{

    [Fact]
    public void Items_come_to_the_backend_as_messages_with_their_calls_and_results()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """
            {"model":"m","instructions":"Be brief.","tool_choice":"required",
             "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],
             "input":[{"role":"developer","content":"Use metric units."},
                      {"role":"user","content":[{"type":"input_text","text":"weather?"}]},
                      {"type":"reasoning","id":"rs_1","summary":[]},
                      {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
                      {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},
                      {"type":"function_call_output","call_id":"call_1","output":"sunny"},
                      {"type":"function_call_output","call_id":"call_2","output":"rain"}]}
            """);

        Assert.StartsWith("Be brief.\n\nUse metric units.", request.Turn.SystemPrompt);
        Assert.Contains("You must call at least one of the functions", request.Turn.SystemPrompt);
        Assert.Equal(["user", "assistant", "user"], request.Turn.Messages.Select(m => m.Role));
        Assert.Equal(["call_1", "call_2"], request.Turn.Messages[1].ToolCalls!.Select(c => c.Id));
        Assert.Equal([("call_1", "sunny"), ("call_2", "rain")], request.Turn.Messages[2].ToolResults!.Select(r => (r.ToolCallId, r.Content)));
    }

    [Fact]
    public async Task A_request_that_names_a_previous_response_goes_on_from_its_conversation_for_its_own_caller_only()
    {
        var dialect = ClaudeDialects.OpenAiResponses;
        var services = DialectHarness.Services();
        var first = DialectHarness.Parse(dialect, """{"model":"m","input":"remember 7"}""") is var parsed ? parsed with { Turn = parsed.Turn with { Owner = "alice" } } : null!;
        var answer = new ArrayBufferWriter<byte>();
        dialect.CreateWriter(first, services, TimeProvider.System.GetTimestamp())
            .WriteAnswer(new ClaudeTurnResult("7 it is", "end_turn", default, 0, default, null, null), "", answer);
        var id = JsonDocument.Parse(answer.WrittenMemory).RootElement.GetProperty("id").GetString();
        var next = DialectHarness.Parse(dialect, $$"""{"model":"m","input":"which number?","previous_response_id":"{{id}}"}""");

        var continued = await dialect.WithCallerAsync(next with { Turn = next.Turn with { Owner = "alice" } }, services, TestContext.Current.CancellationToken);

        Assert.Equal(["remember 7", "7 it is", "which number?"], continued.Turn.Messages.Select(m => m.Text));
        await Assert.ThrowsAsync<DialectRequestException>(async () => await dialect.WithCallerAsync(next with { Turn = next.Turn with { Owner = "bob" } }, services, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_round_of_calls_streams_as_function_call_items_and_the_response_completes()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """{"model":"m","stream":true,"input":"x"}""");
        var lines = Fixtures.StdoutLines("client_tools").TakeWhile(line => !line.Contains("\"tool_result\"", StringComparison.Ordinal));

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(ClaudeDialects.OpenAiResponses, request, lines));

        Assert.Equal(["response.created", "response.in_progress"], frames.Take(2).Select(f => f.Event));
        Assert.Equal(Enumerable.Range(0, frames.Count), frames.Select(f => f.Data.GetProperty("sequence_number").GetInt32()));
        var done = frames.Where(f => f.Event == "response.output_item.done").Select(f => f.Data.GetProperty("item")).ToList();
        Assert.Equal(["function_call", "function_call"], done.Select(i => i.GetProperty("type").GetString()));
        Assert.Equal(["""{"city":"Paris"}""", """{"city":"Oslo"}"""], done.Select(i => i.GetProperty("arguments").GetString()));
        Assert.All(done, i => Assert.StartsWith("toolu_", i.GetProperty("call_id").GetString()));
        var completed = frames[^1];
        Assert.Equal("response.completed", completed.Event);
        Assert.Equal(2, completed.Data.GetProperty("response").GetProperty("output").GetArrayLength());
        Assert.True(completed.Data.GetProperty("response").GetProperty("usage").GetProperty("input_tokens").GetInt64() > 0);
    }

    [Fact]
    public async Task Thinking_streams_as_a_reasoning_item_before_the_message_when_the_client_asks_for_reasoning()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """{"model":"m","stream":true,"input":"x","reasoning":{"effort":"low"}}""");

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(ClaudeDialects.OpenAiResponses, request, "thinking_block_stream_json_partial"));

        var items = frames.Where(f => f.Event == "response.output_item.done").Select(f => f.Data.GetProperty("item").GetProperty("type").GetString());
        Assert.Equal(["reasoning", "message"], items);
        Assert.Contains(frames, f => f.Event == "response.reasoning_summary_text.delta");
        Assert.Equal("response.completed", frames[^1].Event);
    }

    [Fact]
    public void A_named_function_in_the_responses_shape_and_a_bad_item_are_read_as_such()
    {
        var named = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f"}}""");
        var bad = Assert.Throws<DialectRequestException>(() => ClaudeDialects.OpenAiResponses.Parse(Encoding.UTF8.GetBytes("""{"model":"m","input":[{"type":"function_call","call_id":5}]}"""), TimeProvider.System, out _));

        Assert.Contains("You must call the function 'f'", named.Turn.SystemPrompt);
        Assert.Contains("invalid input item", bad.Message);
    }

    [Fact]
    public async Task A_stream_that_fails_ends_with_response_failed()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """{"model":"m","stream":true,"input":"x"}""");
        var lines = Fixtures.StdoutLines("print_stream_json_partial").Take(5);

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(ClaudeDialects.OpenAiResponses, request, lines, new ClaudeBackendError(ClaudeErrorKind.Overloaded, "busy")));

        Assert.Equal("response.output_item.done", frames[^2].Event);
        Assert.Equal("response.failed", frames[^1].Event);
        Assert.Equal("failed", frames[^1].Data.GetProperty("response").GetProperty("status").GetString());
        Assert.Equal("overloaded", frames[^1].Data.GetProperty("response").GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public void Max_output_tokens_reasoning_effort_and_a_json_schema_text_format_reach_the_turn()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """
            {"model":"m","input":"x","max_output_tokens":200,"reasoning":{"effort":"none"},"temperature":0.5,
             "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object","required":["city"]}}}}
            """);

        Assert.Equal(200, request.Turn.Options!.MaxOutputTokens);
        Assert.False(request.Turn.Options.Thinking);
        Assert.Equal("""{"type":"object","required":["city"]}""", request.Turn.Options.OutputSchema!.Value.GetRawText());
        Assert.Equal(["temperature"], request.Ignored);
    }

    [Fact]
    public async Task An_answer_cut_at_the_output_limit_is_an_incomplete_response_for_max_output_tokens()
    {
        var request = DialectHarness.Parse(ClaudeDialects.OpenAiResponses, """{"model":"m","stream":true,"input":"x","max_output_tokens":10}""");
        var lines = Fixtures.Lines("turn_settings", "output_limit.stdout.txt");

        var frames = DialectHarness.NamedEvents(await DialectHarness.StreamAsync(ClaudeDialects.OpenAiResponses, request, lines));

        var last = frames[^1];
        Assert.Equal("response.incomplete", last.Event);
        Assert.Equal("incomplete", last.Data.GetProperty("response").GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", last.Data.GetProperty("response").GetProperty("incomplete_details").GetProperty("reason").GetString());
    }
}
