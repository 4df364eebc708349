using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.ClaudeBackend.Tests.StreamJson;

public sealed class CliLineTests
{
    [Fact]
    public void Only_the_result_lines_of_a_kept_process_end_its_turns()
    {
        // Four turns on one process (a prompt, /clear, a prompt, one after set_model), each ending in its own result line.
        var results = Fixtures.StdoutLines("stream_input_clear_command_between_prompts").Select(CliLine.AsResult).OfType<CliLine>().ToList();

        Assert.Equal(4, results.Count);
        Assert.All(results, r => Assert.Equal("success", r.Subtype));
    }

    [Fact]
    public void An_interrupted_turn_ends_with_an_error_result_and_the_next_turn_with_its_own()
    {
        var results = Fixtures.StdoutLines("stream_input_control_interrupt_mid_stream").Select(CliLine.AsResult).OfType<CliLine>().ToList();

        Assert.Equal(["error_during_execution", "success"], results.Select(r => r.Subtype));
    }

    [Fact]
    public void Text_that_quotes_a_result_line_is_not_one()
    {
        const string delta = """{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"{\"type\":\"result\"}"}}}""";

        Assert.Null(CliLine.AsResult(delta));
        Assert.Null(CliLine.AsResult("not json \"type\":\"result\""));
    }

    [Fact]
    public void Control_requests_are_the_lines_the_cli_expects_on_stdin()
    {
        Assert.Equal("""{"request_id":"interrupt","request":{"subtype":"interrupt"},"type":"control_request"}""", CliControlRequest.Interrupt());
        Assert.Equal("""{"request_id":"initialize","request":{"subtype":"initialize","systemPrompt":"Be brief."},"type":"control_request"}""", CliControlRequest.Initialize("Be brief."));
    }
}
