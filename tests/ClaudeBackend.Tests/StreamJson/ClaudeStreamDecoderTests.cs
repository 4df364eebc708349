using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Tests.StreamJson;

public sealed class ClaudeStreamDecoderTests
{
    private static List<ClaudeStreamEvent> Decode(string fixture) => RecordedTurns.Decode(fixture);

    private static string Text(IEnumerable<ClaudeStreamEvent> events) => string.Concat(events.OfType<TextDelta>().Select(d => d.Text));

    [Fact]
    public void Text_deltas_of_a_streamed_answer_add_up_to_the_result_and_end_with_its_real_usage()
    {
        var events = Decode("print_stream_json_partial");

        Assert.Equal(["Hello, s", "treaming", " world!"], events.OfType<TextDelta>().Select(d => d.Text));
        var completed = Assert.IsType<TurnCompleted>(events[^1]);
        Assert.Equal("Hello, streaming world!", completed.Result.Text);
        Assert.Equal(new ClaudeUsage(3173, 13, 0, 0), completed.Result.Usage);
        Assert.Equal(0.01619, completed.Result.CostUsd);
        Assert.Equal("end_turn", completed.Result.StopReason);
        Assert.Equal("claude-opus-4-8", completed.Result.ResponseModel);
        Assert.Equal(new ClaudeTimings(124, 39, 93, 117), completed.Result.Timings);
    }

    [Fact]
    public void An_answer_without_partial_messages_comes_whole_from_the_assistant_line()
    {
        var events = Decode("print_stream_json_verbose");

        var completed = Assert.IsType<TurnCompleted>(events[^1]);
        Assert.Equal(completed.Result.Text, Text(events));
        Assert.NotEmpty(completed.Result.Text);
    }

    [Fact]
    public void A_broken_stream_retried_without_streaming_yields_the_full_answer_once()
    {
        var events = Decode("stream_break_midway_stream_json");

        Assert.Equal("Hello there this is a longer reply to be cut", Text(events));
        var completed = Assert.IsType<TurnCompleted>(events[^1]);
        // usage is all zero after the non-streaming retry; the per-model counts are the real ones.
        Assert.True(completed.Result.Usage.PromptTokens > 0);
        Assert.True(completed.Result.Usage.OutputTokens > 0);
    }

    [Fact]
    public void Thinking_streams_apart_from_the_answer()
    {
        var events = Decode("thinking_block_stream_json_partial");

        Assert.Equal("Let me think about this.", string.Concat(events.OfType<ThinkingDelta>().Select(d => d.Text)));
        Assert.Equal("hi", Text(events));
    }

    [Theory]
    [InlineData("error_401_stream_json", ClaudeErrorKind.Authentication)]
    [InlineData("error_500_max_retries_2_stream_json", ClaudeErrorKind.UpstreamError)]
    [InlineData("error_529_always_stream_json_default_retries", ClaudeErrorKind.Overloaded)]
    [InlineData("max_turns_1_with_tool_loop", ClaudeErrorKind.CliFailed)]
    [InlineData("auth_oauth_token_env_stream_json", null)]
    public void A_failed_turn_becomes_one_error_of_the_right_kind_and_no_answer_text(string fixture, ClaudeErrorKind? expected)
    {
        var events = Decode(fixture);

        if (expected is null)
        {
            Assert.IsType<TurnCompleted>(events[^1]);
            return;
        }

        var failed = Assert.IsType<TurnFailed>(Assert.Single(events, e => e is TurnFailed or TurnCompleted));
        Assert.Equal(expected, failed.Error.Kind);
        Assert.NotEmpty(failed.Error.Message);
        Assert.Empty(events.OfType<TextDelta>());
    }

    [Fact]
    public void Overload_errors_suggest_when_to_retry()
    {
        var failed = Assert.IsType<TurnFailed>(Decode("error_529_always_stream_json_default_retries")[^1]);

        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, failed.Error.StatusCode);
        Assert.True(failed.Error.RetryAfterSeconds > 0);
    }

    [Fact]
    public void Lines_that_are_not_json_are_skipped()
    {
        var decoder = new ClaudeStreamDecoder();
        List<ClaudeStreamEvent> events = [];

        decoder.Decode("Warning: something on stdout", events);
        decoder.Decode("""{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}}""", events);

        Assert.Equal([new TextDelta("ok")], events);
    }

    [Fact]
    public void A_resume_of_a_session_the_cli_does_not_hold_fails_naming_the_lost_session()
    {
        // Recorded in the gateway's stream-json profile: the reason is in the result line's errors, not only on stderr.
        var failed = Assert.IsType<TurnFailed>(Assert.Single(Decode("resume_unknown_session_stream_json")));

        Assert.Equal(ClaudeErrorKind.CliFailed, failed.Error.Kind);
        Assert.Equal("No conversation found with session ID: 99999999-2222-4333-8444-555555555555", failed.Error.Message);
    }

    [Fact]
    public void A_round_of_parallel_calls_of_the_client_functions_pauses_the_part_once_every_call_waits()
    {
        var decoder = new ClaudeStreamDecoder();
        List<ClaudeStreamEvent> events = [];
        foreach (var line in Fixtures.StdoutLines("client_tools"))
        {
            decoder.Decode(line, events);
            if (decoder.IsFinished)
            {
                break;
            }
        }

        Assert.True(decoder.IsPaused);
        var calls = events.OfType<ToolCallRequested>().ToList();
        Assert.Equal([("get_weather", """{"city":"Paris"}""", 0), ("get_weather", """{"city":"Oslo"}""", 1)], calls.Select(c => (c.Call.Name, c.Call.Arguments, c.Index)));
        var paused = Assert.IsType<TurnCompleted>(events[^1]);
        Assert.Equal(ClaudeTurnResult.ToolUseStopReason, paused.Result.StopReason);
        Assert.Equal(calls.Select(c => c.Call), paused.Result.ToolCalls);
        Assert.All(paused.Result.ToolCalls!, call => Assert.StartsWith("toolu_", call.Id));
        Assert.True(paused.Result.Usage.InputTokens > 0 && paused.Result.Usage.OutputTokens > 0);
        Assert.Equal(2, decoder.PendingCalls.Count);
    }

    [Fact]
    public void The_last_part_of_a_turn_reports_the_usage_that_earlier_parts_did_not()
    {
        var lines = Fixtures.StdoutLines("client_tools");
        var whole = CliLine.AsResult(lines[^1])!.Usage!.ToUsage();
        ClaudeUsage reported = default;
        List<ClaudeStreamEvent> events = [];
        var decoder = new ClaudeStreamDecoder();
        foreach (var line in lines)
        {
            decoder.Decode(line, events);
            if (decoder.IsPaused)
            {
                // The next part starts with the results: a decoder of its own, told what was reported.
                reported = decoder.ReportedUsage;
                decoder = new ClaudeStreamDecoder(reportedEarlier: reported);
            }
        }

        var parts = events.OfType<TurnCompleted>().Select(c => c.Result).ToList();
        Assert.Equal(3, parts.Count);
        Assert.Equal([2, 1], parts.Take(2).Select(p => p.ToolCalls!.Count));
        Assert.Equal(whole, parts.Aggregate(default(ClaudeUsage), (sum, p) => sum + p.Usage));
        Assert.StartsWith("done after 2 rounds", parts[^1].Text);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Words_before_calls_that_are_answered_at_once_are_dropped_and_otherwise_reach_the_client(bool answeredAtOnce)
    {
        string[] lines =
        [
            """{"type":"stream_event","event":{"type":"message_start","message":{"model":"claude-sonnet-5","usage":{"input_tokens":10,"output_tokens":1}}}}""",
            """{"type":"stream_event","event":{"type":"content_block_delta","delta":{"type":"text_delta","text":"Let me check."}}}""",
            """{"type":"stream_event","event":{"type":"content_block_start","content_block":{"type":"tool_use","id":"toolu_1","name":"mcp__client__get_weather","input":{}}}}""",
            """{"type":"control_request","request_id":"r1","request":{"subtype":"mcp_message","server_name":"client","message":{"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"},"_meta":{"claudecode/toolUseId":"toolu_1"}},"jsonrpc":"2.0","id":2}}}""",
            """{"type":"stream_event","event":{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}}""",
        ];
        var decoder = new ClaudeStreamDecoder { AnswersAtOnce = _ => answeredAtOnce, MayAnswerAtOnce = () => true };
        List<ClaudeStreamEvent> events = [];
        foreach (var line in lines)
        {
            decoder.Decode(line, events);
        }

        Assert.Equal(answeredAtOnce ? [] : ["Let me check."], events.OfType<TextDelta>().Select(d => d.Text));
        Assert.Equal(!answeredAtOnce, decoder.IsPaused);
    }

    [Fact]
    public void A_turn_on_a_process_that_served_others_costs_what_its_result_adds_to_the_runs_total()
    {
        // One process, three turns (recorded): each result's total_cost_usd is the whole run's so far.
        var lines = TurnSettingsLines("settings.stdout.txt");
        List<double> costs = [];
        double? total = 0;
        var start = 0;
        for (var end = 0; end < lines.Length; end++)
        {
            if (lines[end].Contains("\"type\":\"result\"", StringComparison.Ordinal))
            {
                var decoder = new ClaudeStreamDecoder { CostReportedEarlier = total!.Value };
                costs.Add(Assert.IsType<TurnCompleted>(RecordedTurns.Decode(decoder, lines[start..(end + 1)])[^1]).Result.CostUsd);
                (total, start) = (decoder.ReportedTotalCostUsd, end + 1);
            }
        }

        Assert.Equal([0.020043, 0.020145, 0.020244], costs.Select(c => Math.Round(c, 6)));
        Assert.Equal(0.060432, total!.Value, 6);
    }

    private static string[] TurnSettingsLines(string file) => Fixtures.Lines("turn_settings", file);

    private static StructuredAnswer Schema(string json) =>
        StructuredAnswer.TryCreate(JsonDocument.Parse(json).RootElement, out var problem) ?? throw new InvalidOperationException(problem);

    [Fact]
    public void The_answer_ends_before_a_stop_sequence_that_spans_two_deltas_and_nothing_after_it_streams()
    {
        var decoder = new ClaudeStreamDecoder { StopSequences = [", str", "never"] };

        var events = RecordedTurns.Decode(decoder, Fixtures.StdoutLines("print_stream_json_partial"));

        Assert.Equal("Hello", Text(events));
        var completed = Assert.IsType<TurnCompleted>(events[^1]);
        Assert.Equal(ClaudeTurnResult.StopSequenceStopReason, completed.Result.StopReason);
        Assert.Equal("Hello", completed.Result.Text);
        Assert.True(completed.Result.Usage.InputTokens > 0);
    }

    [Fact]
    public void Stop_sequences_the_answer_never_reaches_leave_it_whole()
    {
        var decoder = new ClaudeStreamDecoder { StopSequences = ["world?", "xyz"] };

        var events = RecordedTurns.Decode(decoder, Fixtures.StdoutLines("print_stream_json_partial"));

        Assert.Equal("Hello, streaming world!", Text(events));
        Assert.Equal("end_turn", Assert.IsType<TurnCompleted>(events[^1]).Result.StopReason);
    }

    [Fact]
    public void A_structured_answer_is_the_structured_output_alone_checked_against_the_schema()
    {
        var decoder = new ClaudeStreamDecoder { Structured = Schema("""{"type":"object","required":["city","temp"]}""") };

        var events = RecordedTurns.Decode(decoder, TurnSettingsLines("structured_ok.stdout.txt"));

        Assert.Equal("""{"city":"Paris","temp":21}""", Assert.Single(events.OfType<TextDelta>()).Text);
        var completed = Assert.IsType<TurnCompleted>(events[^1]);
        Assert.Equal("""{"city":"Paris","temp":21}""", completed.Result.Text);
        Assert.Equal("end_turn", completed.Result.StopReason);
    }

    [Fact]
    public void A_model_that_gave_up_on_the_schema_fails_the_turn_instead_of_answering_the_clis_notice()
    {
        var decoder = new ClaudeStreamDecoder { Structured = Schema("""{"type":"object"}""") };

        var events = RecordedTurns.Decode(decoder, TurnSettingsLines("structured_refused.stdout.txt"));

        Assert.Empty(events.OfType<TextDelta>());
        var failed = Assert.IsType<TurnFailed>(Assert.Single(events));
        Assert.Equal(ClaudeErrorKind.InvalidOutput, failed.Error.Kind);
        Assert.Contains("[structured-output-enforce]", failed.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Structured_output_that_the_gateways_own_check_rejects_is_an_error_naming_the_place()
    {
        var decoder = new ClaudeStreamDecoder { Structured = Schema("""{"type":"object","properties":{"temp":{"type":"number","maximum":10}}}""") };

        var failed = Assert.IsType<TurnFailed>(Assert.Single(RecordedTurns.Decode(decoder, TurnSettingsLines("structured_ok.stdout.txt"))));

        Assert.Equal(ClaudeErrorKind.InvalidOutput, failed.Error.Kind);
        Assert.Contains("/temp", failed.Error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"type":"strange"}}}""")]
    [InlineData("""[1,2]""")]
    public void A_schema_that_is_no_json_schema_is_refused(string schema)
    {
        Assert.Null(StructuredAnswer.TryCreate(JsonDocument.Parse(schema).RootElement, out var problem));
        Assert.NotNull(problem);
    }

    [Fact]
    public void A_response_that_reaches_the_output_limit_ends_the_answer_there_instead_of_the_clis_continuations()
    {
        var decoder = new ClaudeStreamDecoder();

        var events = RecordedTurns.Decode(decoder, TurnSettingsLines("output_limit.stdout.txt"));

        Assert.Equal("abcdefghij", Text(events));
        var completed = Assert.IsType<TurnCompleted>(Assert.Single(events, e => e is TurnCompleted or TurnFailed));
        Assert.Equal(ClaudeTurnResult.MaxTokensStopReason, completed.Result.StopReason);
        Assert.Equal("abcdefghij", completed.Result.Text);
        Assert.True(completed.Result.Usage.OutputTokens > 0);
    }

    [Fact]
    public void The_stop_sequence_that_ended_the_answer_is_named_in_the_result()
    {
        var decoder = new ClaudeStreamDecoder { StopSequences = ["world", "str"] };

        var completed = Assert.IsType<TurnCompleted>(RecordedTurns.Decode(decoder, Fixtures.StdoutLines("print_stream_json_partial"))[^1]);

        Assert.Equal("str", completed.Result.StopSequence);
        Assert.Equal("Hello, ", completed.Result.Text);
    }

    [Fact]
    public void Text_held_back_for_a_stop_sequence_is_streamed_before_the_thinking_that_follows_it()
    {
        var decoder = new ClaudeStreamDecoder { StopSequences = ["zzzz"] };
        string[] lines =
        [
            """{"type":"stream_event","event":{"type":"message_start","message":{"id":"m1","model":"claude-sonnet-5","usage":{"input_tokens":5,"output_tokens":0}}}}""",
            """{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"before"}}}""",
            """{"type":"stream_event","event":{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}}""",
        ];

        var events = RecordedTurns.Decode(decoder, lines);

        Assert.Equal(["text:before", "thinking:hmm"], events.Select(e => e switch { TextDelta t => "text:" + t.Text, ThinkingDelta k => "thinking:" + k.Text, _ => "?" }).Aggregate(
            new List<string>(), (all, next) =>
            {
                // Consecutive text deltas read as one.
                if (all.Count > 0 && all[^1].StartsWith("text:", StringComparison.Ordinal) && next.StartsWith("text:", StringComparison.Ordinal))
                {
                    all[^1] += next["text:".Length..];
                }
                else
                {
                    all.Add(next);
                }

                return all;
            }));
    }

    [Fact]
    public void A_structured_answer_cut_at_the_output_limit_is_an_error_not_an_empty_answer()
    {
        var decoder = new ClaudeStreamDecoder { Structured = Schema("""{"type":"object"}""") };

        var failed = Assert.IsType<TurnFailed>(Assert.Single(RecordedTurns.Decode(decoder, TurnSettingsLines("output_limit.stdout.txt"))));

        Assert.Equal(ClaudeErrorKind.InvalidOutput, failed.Error.Kind);
    }

    [Fact]
    public void A_usage_limit_whose_reset_time_contains_529_is_a_rate_limit_not_an_overload()
    {
        var decoder = new ClaudeStreamDecoder();

        var failed = Assert.IsType<TurnFailed>(Assert.Single(RecordedTurns.Decode(decoder,
            ["""{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1796159529"}"""])));

        Assert.Equal(ClaudeErrorKind.RateLimited, failed.Error.Kind);
    }

    private static List<ClaudeStreamEvent> DecodeRateLimits(string file, TimeProvider? timeProvider = null) =>
        RecordedTurns.Decode(new ClaudeStreamDecoder(timeProvider), Fixtures.Lines("rate_limits", file));

    [Fact]
    public void A_subscription_near_its_limit_reports_the_window_its_utilization_and_its_reset()
    {
        var events = DecodeRateLimits("subscription_warning.stdout.txt");

        var reported = Assert.Single(events.OfType<RateLimitReported>()).RateLimit;
        Assert.Equal(new ClaudeRateLimit("allowed_warning", "five_hour", 0.93, DateTimeOffset.FromUnixTimeSeconds(1796180400), IsUsingOverage: false), reported);
        // The report is no part of the answer: it comes after the words, and the turn completes as any other.
        Assert.IsType<RateLimitReported>(events[^2]);
        Assert.Equal("hi", Assert.IsType<TurnCompleted>(events[^1]).Result.Text);
        Assert.Equal("hi", Text(events));
    }

    [Fact]
    public void A_subscription_with_no_window_near_its_limit_reports_allowed_and_nothing_else()
    {
        var reported = Assert.Single(DecodeRateLimits("subscription_allowed.stdout.txt").OfType<RateLimitReported>()).RateLimit;

        Assert.Equal(new ClaudeRateLimit("allowed", IsUsingOverage: false), reported);
    }

    [Fact]
    public void A_subscription_at_its_limit_reports_rejected_and_the_turn_fails_rate_limited_until_the_window_resets()
    {
        var now = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1796180400 - 3600));

        var events = DecodeRateLimits("subscription_rejected.stdout.txt", now);

        Assert.Equal(
            new ClaudeRateLimit("rejected", "seven_day", ResetsAt: DateTimeOffset.FromUnixTimeSeconds(1796180400), IsUsingOverage: false, OverageStatus: "rejected"),
            Assert.Single(events.OfType<RateLimitReported>()).RateLimit);
        var failed = Assert.IsType<TurnFailed>(events[^1]);
        Assert.Equal(ClaudeErrorKind.RateLimited, failed.Error.Kind);
        // The CLI's message names no time ("You've hit your weekly limit · resets 3am (UTC)"): the report does.
        Assert.Equal(3600, failed.Error.RetryAfterSeconds);
        // A turn that fails before its answer gets no events to the client: its error carries the state.
        Assert.Same(events.OfType<RateLimitReported>().Single().RateLimit, failed.Error.RateLimit);
    }

    [Fact]
    public void A_login_with_an_api_key_reports_no_rate_limits()
    {
        Assert.Empty(DecodeRateLimits("api_key.stdout.txt").OfType<RateLimitReported>());
    }
}
