using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.StreamJson;

/// <summary>
/// Turns the CLI's stream-json lines into <see cref="ClaudeStreamEvent"/>s. One instance per turn, or per part of a
/// turn that pauses for the client's function results: it remembers what was streamed so far.
/// </summary>
/// <remarks>
/// Text is streamed from <c>stream_event</c> deltas as they arrive. The <c>assistant</c> line that closes each
/// content block is authoritative: when a stream breaks, the CLI retries without streaming and prints the whole
/// answer there without withdrawing the deltas it already printed, so only the part not yet streamed is emitted.
/// <para>
/// When the model calls the client's functions, the CLI asks the host for each call (<c>tools/call</c>) and waits. Once
/// the model's message has ended with <c>stop_reason: tool_use</c> and every <c>tool_use</c> block of it is waiting so,
/// the part is complete (<see cref="IsPaused"/>): the client gets the calls, and its results continue the turn. The
/// CLI's result line counts the whole turn, so what earlier parts reported is taken off its usage.
/// </para>
/// </remarks>
/// <param name="reportedEarlier">The usage earlier parts of the same CLI turn reported.</param>
public sealed partial class ClaudeStreamDecoder(TimeProvider? timeProvider = null, ClaudeUsage reportedEarlier = default)
{
    private readonly TimeProvider _timeProvider = timeProvider ?? TimeProvider.System;

    /// <summary>
    /// What the process's earlier turns cost: a result's <c>total_cost_usd</c> is the total of the CLI's whole run
    /// (recorded in <c>turn_settings/settings.stdout.txt</c>: 0.020, 0.040, 0.060 over three turns), so a turn costs the
    /// difference.
    /// </summary>
    public double CostReportedEarlier { get; init; }

    /// <summary>The run's total cost as the turn's result line reported it; null before it (or without one).</summary>
    public double? ReportedTotalCostUsd { get; private set; }
    // The tool_use blocks of the model's message being streamed, in order, and the calls the CLI waits on.
    private readonly List<string> _roundToolUses = [];
    private readonly List<PendingToolCall> _pendingCalls = [];
    private bool _roundEnded;
    private ClaudeUsage _usage;
    // What a message said while it may be a round the client already has (ToolReplay): held until the message ends.
    private readonly List<ClaudeStreamEvent> _held = [];
    private bool _holding;
    private int _heldChars;
    private int _answeredAtOnce;
    private string? _messageId;
    private readonly StringBuilder _streamedText = new();
    private readonly StringBuilder _streamedThinking = new();
    private readonly StringBuilder _answer = new();
    private double? _lastRetryDelayMs;
    private ClaudeRateLimit? _lastRateLimit;
    private string? _responseModel;
    // The end of the answer not yet streamed because a stop sequence may begin in it.
    private readonly StringBuilder _stopTail = new();

    /// <summary>True once the turn's outcome (<see cref="TurnCompleted"/> or <see cref="TurnFailed"/>) was decoded.</summary>
    public bool IsFinished { get; private set; }

    /// <summary>The API model that is answering, once known.</summary>
    public string? ResponseModel => _responseModel;

    /// <summary>True once the part ended with calls of the client's functions that the CLI waits on.</summary>
    public bool IsPaused { get; private set; }

    /// <summary>The calls the CLI waits on, once <see cref="IsPaused"/>.</summary>
    internal IReadOnlyList<PendingToolCall> PendingCalls => _pendingCalls;

    /// <summary>Answers a call at once, without the client, when it returns true (a rebuilt conversation's known results).</summary>
    internal Func<PendingToolCall, bool>? AnswersAtOnce { get; init; }

    /// <summary>
    /// Whether calls may still be answered at once: a message's words are then held until it ends, and dropped if its
    /// calls all were (the client has those words from the round it already got).
    /// </summary>
    internal Func<bool>? MayAnswerAtOnce { get; init; }

    /// <summary>
    /// Texts at which the answer ends (the request's stop sequences): the answer streams up to the first one, which is
    /// held back until it cannot begin one, and the part then completes with <c>stop_reason: stop_sequence</c> while
    /// the CLI still runs (its owner interrupts it).
    /// </summary>
    internal IReadOnlyList<string>? StopSequences { get; init; }

    /// <summary>
    /// The schema of a structured answer: the model's words are not the answer, the <c>structured_output</c> of the
    /// result line is, once it matches the schema; otherwise the turn fails.
    /// </summary>
    internal StructuredAnswer? Structured { get; init; }

    /// <summary>The usage reported up to the end of this part (earlier parts included).</summary>
    public ClaudeUsage ReportedUsage => reportedEarlier + _usage;

    /// <summary>Decodes one line. Lines that are not JSON objects, or carry nothing for a client, add no event.</summary>
    public void Decode(ReadOnlySpan<byte> line, ICollection<ClaudeStreamEvent> events)
    {
        if (IsFinished || line.IsEmpty)
        {
            return;
        }

        CliLine? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(line, ClaudeBackendJsonContext.Default.CliLine);
        }
        catch (JsonException)
        {
            // The CLI prints only JSON on stdout in stream-json mode; anything else (a stray warning) is noise.
            return;
        }

        if (parsed is not null)
        {
            Decode(parsed, events);
        }
    }

    /// <inheritdoc cref="Decode(ReadOnlySpan{byte}, ICollection{ClaudeStreamEvent})"/>
    public void Decode(string line, ICollection<ClaudeStreamEvent> events) => Decode(Encoding.UTF8.GetBytes(line), events);

    private void Decode(CliLine line, ICollection<ClaudeStreamEvent> events)
    {
        switch (line.Type)
        {
            case "stream_event" when line.Event is { } streamEvent:
                DecodeStreamEvent(streamEvent, events);
                break;
            case "assistant" when line.Message is { } message:
                DecodeAssistantMessage(message, events);
                PauseIfRoundWaits(events);
                break;
            case "system" when line.Subtype == "api_retry":
                _lastRetryDelayMs = line.RetryDelayMs;
                break;
            case "rate_limit_event" when line.RateLimitInfo is { Status: { } status } info:
                _lastRateLimit = new ClaudeRateLimit(status, info.RateLimitType, info.Utilization, TimeOf(info.ResetsAt),
                    info.IsUsingOverage, info.OverageStatus, TimeOf(info.OverageResetsAt));
                events.Add(new RateLimitReported(_lastRateLimit));
                break;
            case "result":
                DecodeResult(line, events);
                break;
            case "control_request" when ClientToolServer.ToolCallOf(line) is { } call:
                if (AnswersAtOnce?.Invoke(call) == true)
                {
                    _answeredAtOnce++;
                    _roundToolUses.Remove(call.Call.Id);
                    PauseIfRoundWaits(events);
                    break;
                }

                // A call that goes to the client: this message is no round the client has already.
                ReleaseHeld(replayed: false, events);
                FlushStopTail(events);
                if (IsFinished)
                {
                    break;
                }

                _pendingCalls.Add(call);
                // Clients gather a streamed call by its index: the calls they get are numbered without gaps.
                events.Add(new ToolCallRequested(call.Call, _pendingCalls.Count - 1));
                PauseIfRoundWaits(events);
                break;
            case "user" when line.Message?.Content is { } blocks:
                // A call the CLI answered itself (arguments that do not fit the schema): the client never gets it.
                foreach (var block in blocks)
                {
                    if (block is { Type: "tool_result", ToolUseId: { } answered })
                    {
                        _roundToolUses.Remove(answered);
                    }
                }

                PauseIfRoundWaits(events);
                break;
        }
    }

    private void PauseIfRoundWaits(ICollection<ClaudeStreamEvent> events)
    {
        if (!_roundEnded || _roundToolUses.Count == 0 || !_roundToolUses.All(id => _pendingCalls.Exists(p => p.Call.Id == id)))
        {
            return;
        }

        FlushStopTail(events);
        if (IsFinished)
        {
            return;
        }

        // In the order the client got them streamed.
        var calls = _pendingCalls.Select(p => p.Call).Where(c => _roundToolUses.Contains(c.Id)).ToList();
        IsPaused = true;
        // The CLI reports durations and cost only for the whole turn, in its result line: they go with the last part.
        var result = new ClaudeTurnResult(_answer.ToString(), ClaudeTurnResult.ToolUseStopReason, _usage, 0, default, null, _responseModel, calls);
        Finish(new TurnCompleted(result), events);
    }

    private void DecodeStreamEvent(CliStreamEvent streamEvent, ICollection<ClaudeStreamEvent> events)
    {
        switch (streamEvent.Type)
        {
            case "message_start":
                if (streamEvent.Message?.Model is { } model)
                {
                    _responseModel = model;
                }

                if (streamEvent.Message?.Usage is { } started)
                {
                    _usage += started.ToUsage() with { OutputTokens = 0 };
                }

                _messageId = streamEvent.Message?.Id;
                _roundToolUses.Clear();
                _roundEnded = false;
                _holding = MayAnswerAtOnce?.Invoke() == true;
                _answeredAtOnce = 0;
                break;
            case "content_block_start" when streamEvent.ContentBlock is { Type: "tool_use", Id: { } toolUseId } block && IsClientCall(block):
                _roundToolUses.Add(toolUseId);
                break;
            case "message_delta" when streamEvent.Delta?.StopReason == ClaudeTurnResult.MaxTokensStopReason:
                _usage += new ClaudeUsage(0, streamEvent.Usage?.OutputTokens ?? 0, 0, 0);
                EndAtOutputLimit(events);
                break;
            case "message_delta":
                _usage += new ClaudeUsage(0, streamEvent.Usage?.OutputTokens ?? 0, 0, 0);
                _roundEnded = streamEvent.Delta?.StopReason == ClaudeTurnResult.ToolUseStopReason;
                ReleaseHeld(replayed: _roundEnded && _roundToolUses.Count == 0 && _answeredAtOnce > 0, events);
                PauseIfRoundWaits(events);
                break;
            case "content_block_delta" when streamEvent.Delta is { Type: "text_delta", Text: { Length: > 0 } text }:
                _streamedText.Append(text);
                Emit(new TextDelta(text), events);
                break;
            case "content_block_delta" when streamEvent.Delta is { Type: "thinking_delta", Thinking: { Length: > 0 } thinking }:
                _streamedThinking.Append(thinking);
                Emit(new ThinkingDelta(thinking), events);
                break;
        }
    }

    /// <summary>
    /// The most a message may say before its words are streamed although it could still be a repeated round: words
    /// before calls are a sentence or two, and a long answer must not wait for its end (nor time out waiting).
    /// </summary>
    private const int MaxHeldChars = 2_000;

    private void Emit(ClaudeStreamEvent delta, ICollection<ClaudeStreamEvent> events)
    {
        if (IsFinished)
        {
            // Held words released after the part ended at a stop sequence: nothing follows the end.
            return;
        }

        if (_holding)
        {
            _held.Add(delta);
            _heldChars += delta is TextDelta { Text: var t } ? t.Length : delta is ThinkingDelta { Text: var k } ? k.Length : 0;
            if (_heldChars > MaxHeldChars)
            {
                ReleaseHeld(replayed: false, events);
            }

            return;
        }

        if (delta is TextDelta text)
        {
            EmitText(text.Text, events);
            return;
        }

        // Text held back for a stop sequence comes before what the model says next.
        FlushStopTail(events);
        events.Add(delta);
    }

    private void EmitText(string text, ICollection<ClaudeStreamEvent> events)
    {
        if (Structured is not null)
        {
            // Words around the StructuredOutput call are not the answer: the structured output is (DecodeResult).
            return;
        }

        if (StopSequences is not { Count: > 0 } stops)
        {
            _answer.Append(text);
            events.Add(new TextDelta(text));
            return;
        }

        _stopTail.Append(text);
        var tail = _stopTail.ToString();
        var (stopAt, stop) = stops.Select(stop => (At: tail.IndexOf(stop, StringComparison.Ordinal), Stop: stop))
            .Where(found => found.At >= 0).DefaultIfEmpty((At: -1, Stop: "")).MinBy(found => found.At);
        if (stopAt >= 0)
        {
            _stopTail.Clear();
            AppendAnswer(tail[..stopAt], events);
            // The CLI reports usage and cost in its result line, which an interrupted turn gives as zeros: the part
            // reports what the stream showed.
            Finish(new TurnCompleted(new ClaudeTurnResult(
                _answer.ToString(), ClaudeTurnResult.StopSequenceStopReason, _usage, 0, default, null, _responseModel, StopSequence: stop)), events);
            return;
        }

        // Stream all but what could be the start of a stop sequence, never half a surrogate pair.
        var release = tail.Length - Math.Min(tail.Length, stops.Max(stop => stop.Length) - 1);
        if (release > 0 && char.IsHighSurrogate(tail[release - 1]))
        {
            release--;
        }

        if (release > 0)
        {
            _stopTail.Remove(0, release);
            AppendAnswer(tail[..release], events);
        }
    }

    private void AppendAnswer(string text, ICollection<ClaudeStreamEvent> events)
    {
        if (text.Length > 0)
        {
            _answer.Append(text);
            events.Add(new TextDelta(text));
        }
    }

    /// <summary>
    /// The model's response reached the output-token limit: the answer ends there, as the API's would. The CLI would
    /// ask the model to go on (up to three times, then fail the turn; <c>tests/Fixtures/turn_settings</c>), so the part
    /// completes while it still runs, and its owner interrupts it.
    /// </summary>
    private void EndAtOutputLimit(ICollection<ClaudeStreamEvent> events)
    {
        ReleaseHeld(replayed: false, events);
        FlushStopTail(events);
        if (Structured is not null)
        {
            Finish(new TurnFailed(new ClaudeBackendError(
                ClaudeErrorKind.InvalidOutput, "The model reached the output token limit before it gave an answer that matches the requested JSON schema.")), events);
            return;
        }

        Finish(new TurnCompleted(new ClaudeTurnResult(_answer.ToString(), ClaudeTurnResult.MaxTokensStopReason, _usage, 0, default, null, _responseModel)), events);
    }

    /// <summary>What was held back for a stop sequence that never came: the answer goes on with something else, or ends.</summary>
    private void FlushStopTail(ICollection<ClaudeStreamEvent> events)
    {
        if (_stopTail.Length > 0)
        {
            var tail = _stopTail.ToString();
            _stopTail.Clear();
            AppendAnswer(tail, events);
        }
    }

    /// <summary>At a message's end: what it said goes to the client, unless the message was a round it already has.</summary>
    private void ReleaseHeld(bool replayed, ICollection<ClaudeStreamEvent> events)
    {
        _holding = false;
        _heldChars = 0;
        if (!replayed)
        {
            foreach (var delta in _held)
            {
                Emit(delta, events);
            }
        }

        _held.Clear();
    }

    private void DecodeAssistantMessage(CliMessage message, ICollection<ClaudeStreamEvent> events)
    {

        if (message.Model is { } model and not "<synthetic>")
        {
            _responseModel = model;
        }
        else if (message.Model is "<synthetic>")
        {
            // The CLI's own error text, repeated by the result line that follows: not an answer.
            return;
        }

        if (message.Id is { } id && id != _messageId)
        {
            // A message the stream did not show (the CLI's retry without streaming prints whole messages only).
            ReleaseHeld(replayed: false, events);
            (_messageId, _roundEnded) = (id, false);
            _roundToolUses.Clear();
        }

        if (message.StopReason == ClaudeTurnResult.ToolUseStopReason)
        {
            // A whole message printed at once ends its round as the stream's message_delta would.
            _roundEnded = true;
        }

        var hitLimit = message.StopReason == ClaudeTurnResult.MaxTokensStopReason;

        foreach (var block in message.Content ?? [])
        {
            switch (block.Type)
            {
                case "tool_use" when block.Id is { } toolUseId && IsClientCall(block) && !_roundToolUses.Contains(toolUseId):
                    // A call the stream did not show: the CLI's retry without streaming prints whole messages only.
                    _roundToolUses.Add(toolUseId);
                    break;
                case "text" when block.Text is { } text:
                    EmitUnstreamedRemainder(text, _streamedText, s => new TextDelta(s), events);
                    break;
                case "thinking" when block.Thinking is { } thinking:
                    EmitUnstreamedRemainder(thinking, _streamedThinking, s => new ThinkingDelta(s), events);
                    break;
            }
        }

        if (hitLimit)
        {
            // A whole message printed at once (the CLI's non-streaming retry) that reached the limit.
            EndAtOutputLimit(events);
        }

    }

    /// <summary>
    /// Whether a <c>tool_use</c> calls one of the client's functions: a CLI tool the operator allowed runs in the CLI and
    /// is never waited on by the host.
    /// </summary>
    private static bool IsClientCall(CliContentBlock block) => block.Name?.StartsWith(ClientToolServer.ToolNamePrefix, StringComparison.Ordinal) == true;

    private void EmitUnstreamedRemainder(
        string blockText,
        StringBuilder streamed,
        Func<string, ClaudeStreamEvent> create,
        ICollection<ClaudeStreamEvent> events)
    {
        var alreadyStreamed = streamed.ToString();
        streamed.Clear();
        var remainder = blockText.StartsWith(alreadyStreamed, StringComparison.Ordinal)
            ? blockText[alreadyStreamed.Length..]
            : blockText;
        if (remainder.Length == 0)
        {
            return;
        }

        Emit(create(remainder), events);
    }

    private void DecodeResult(CliLine line, ICollection<ClaudeStreamEvent> events)
    {
        ReleaseHeld(replayed: false, events);
        FlushStopTail(events);
        if (IsFinished)
        {
            // The answer ended at a stop sequence in words held until now.
            return;
        }

        if (line.IsError == true || line.Subtype is { } subtype && subtype != "success")
        {
            Finish(new TurnFailed(ErrorOf(line)), events);
            return;
        }

        var text = line.Result ?? _answer.ToString();
        var stopReason = line.StopReason;
        if (Structured is not null)
        {
            if (StructuredProblem(line) is { } problem)
            {
                Finish(new TurnFailed(new ClaudeBackendError(ClaudeErrorKind.InvalidOutput, problem)), events);
                return;
            }

            // The answer is the structured output; the turn ended with the model's StructuredOutput call.
            text = line.StructuredOutput!.Value.GetRawText();
            stopReason = "end_turn";
            events.Add(new TextDelta(text));
        }

        ReportedTotalCostUsd = line.TotalCostUsd;
        var usage = line.Usage?.ToUsage() ?? default;
        if (usage.PromptTokens + usage.OutputTokens == 0 && line.ModelUsage is { Count: > 0 } byModel)
        {
            // After a non-streaming retry the CLI reports zeros in usage but the real counts per model.
            usage = new ClaudeUsage(
                byModel.Values.Sum(m => m.InputTokens),
                byModel.Values.Sum(m => m.OutputTokens),
                byModel.Values.Sum(m => m.CacheReadInputTokens),
                byModel.Values.Sum(m => m.CacheCreationInputTokens));
        }

        var result = new ClaudeTurnResult(
            Text: text,
            StopReason: stopReason,
            // The result counts the whole CLI turn; earlier parts that paused for function results reported theirs.
            Usage: usage - reportedEarlier,
            CostUsd: Math.Max(0, (line.TotalCostUsd ?? CostReportedEarlier) - CostReportedEarlier),
            Timings: new ClaudeTimings(line.DurationMs ?? 0, line.DurationApiMs ?? 0, line.TimeToRequestMs, line.TtftMs),
            SessionId: line.SessionId,
            ResponseModel: _responseModel);
        Finish(new TurnCompleted(result), events);
    }

    /// <summary>
    /// Why a result has no answer that matches the schema. When the model gives up on the schema, the CLI's result has no
    /// <c>structured_output</c> and its text is a <c>[structured-output-enforce]</c> notice (observed with 2.1.197).
    /// </summary>
    private string? StructuredProblem(CliLine line)
    {
        if (line.StructuredOutput is not { ValueKind: not (JsonValueKind.Undefined or JsonValueKind.Null) } output)
        {
            return $"The model gave no answer that matches the requested JSON schema (the Claude CLI said: {line.Result}).";
        }

        return Structured!.ProblemOf(output) is { } problem
            ? $"The model's answer does not match the requested JSON schema: {problem}."
            : null;
    }

    private ClaudeBackendError ErrorOf(CliLine line)
    {
        var message = line.Result ?? (line.Errors is { Length: > 0 } errors ? string.Join("; ", errors) : null)
            ?? $"The Claude CLI ended the turn with '{line.Subtype}'.";
        var kind = line.ApiErrorStatus switch
        {
            400 => ClaudeErrorKind.InvalidRequest,
            401 => ClaudeErrorKind.Authentication,
            403 => ClaudeErrorKind.PermissionDenied,
            404 => ClaudeErrorKind.ModelNotFound,
            413 => ClaudeErrorKind.RequestTooLarge,
            429 => ClaudeErrorKind.RateLimited,
            529 => ClaudeErrorKind.Overloaded,
            >= 500 => ClaudeErrorKind.UpstreamError,
            _ => KindFromText(line.Subtype, message),
        };
        var rejected = _lastRateLimit is { Status: ClaudeRateLimit.Rejected, ResetsAt: { } resetsAt } ? resetsAt.ToUnixTimeSeconds() : (long?)null;
        int? retryAfter = kind is ClaudeErrorKind.RateLimited or ClaudeErrorKind.Overloaded
            ? SecondsUntil(UsageLimitResetsAt(message) ?? rejected) ?? (int)Math.Ceiling((_lastRetryDelayMs ?? 1000) / 1000)
            : null;
        return new ClaudeBackendError(kind, message, retryAfter, kind is ClaudeErrorKind.RateLimited ? _lastRateLimit : null);
    }

    /// <summary>A subscription's "Claude AI usage limit reached|1763940000" names the epoch second it resets.</summary>
    private static long? UsageLimitResetsAt(string message) =>
        UsageLimit().Match(message) is { Success: true } match && long.TryParse(match.Groups[1].ValueSpan, out var epoch) ? epoch : null;

    /// <summary>An epoch second as a time; null for none, or for one no date has (a unit the CLI might change).</summary>
    private static DateTimeOffset? TimeOf(long? epochSeconds) =>
        epochSeconds is { } epoch && epoch >= DateTimeOffset.MinValue.ToUnixTimeSeconds() && epoch <= DateTimeOffset.MaxValue.ToUnixTimeSeconds()
            ? DateTimeOffset.FromUnixTimeSeconds(epoch)
            : null;

    private int? SecondsUntil(long? epochSeconds) =>
        epochSeconds is { } epoch ? (int)Math.Max(1, epoch - _timeProvider.GetUtcNow().ToUnixTimeSeconds()) : null;

    /// <summary>The API's overload status as a word of its own, not digits inside a larger number.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"(?<!\d)529(?!\d)")]
    private static partial System.Text.RegularExpressions.Regex OverloadedStatus();

    [System.Text.RegularExpressions.GeneratedRegex(@"usage limit reached\|(\d{9,})", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex UsageLimit();

    private static ClaudeErrorKind KindFromText(string? subtype, string message) => message switch
    {
        _ when subtype == "error_max_structured_output_retries" => ClaudeErrorKind.InvalidOutput,
        _ when subtype is not (null or "success") => ClaudeErrorKind.CliFailed,
        _ when message.Contains("Not logged in", StringComparison.OrdinalIgnoreCase)
            || message.Contains("Invalid API key", StringComparison.OrdinalIgnoreCase) => ClaudeErrorKind.Authentication,
        // Before the overload test: a usage limit's reset time (epoch seconds) may well contain "529".
        _ when message.Contains("usage limit", StringComparison.OrdinalIgnoreCase)
            || message.Contains("rate limit", StringComparison.OrdinalIgnoreCase) => ClaudeErrorKind.RateLimited,
        _ when OverloadedStatus().IsMatch(message)
            || message.Contains("Overloaded", StringComparison.OrdinalIgnoreCase) => ClaudeErrorKind.Overloaded,
        _ when message.Contains("timed out", StringComparison.OrdinalIgnoreCase) => ClaudeErrorKind.Timeout,
        _ => ClaudeErrorKind.UpstreamError,
    };

    private void Finish(ClaudeStreamEvent outcome, ICollection<ClaudeStreamEvent> events)
    {
        if (IsFinished)
        {
            return;
        }

        IsFinished = true;
        events.Add(outcome);
    }
}
