namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>The CLI's own account of a finished turn (its <c>result</c> line): never estimated.</summary>
/// <param name="Text">The final answer text.</param>
/// <param name="StopReason">The API's stop reason, e.g. <c>end_turn</c>, <c>max_tokens</c>.</param>
/// <param name="Usage">Token counts for this turn.</param>
/// <param name="CostUsd">The CLI's cost figure for the run.</param>
/// <param name="Timings">The CLI's durations.</param>
/// <param name="SessionId">The Claude session the turn belongs to.</param>
/// <param name="ResponseModel">The API model that answered, e.g. <c>claude-sonnet-5</c>.</param>
/// <param name="ToolCalls">The client's functions the model called (<see cref="StopReason"/> is then <c>tool_use</c>): the
/// turn waits for their results.</param>
/// <param name="StopSequence">The stop sequence the answer ended before (<see cref="StopReason"/> <c>stop_sequence</c>).</param>
public sealed record ClaudeTurnResult(
    string Text,
    string? StopReason,
    ClaudeUsage Usage,
    double CostUsd,
    ClaudeTimings Timings,
    string? SessionId,
    string? ResponseModel,
    IReadOnlyList<ClaudeToolCall>? ToolCalls = null,
    string? StopSequence = null)
{
    public const string ToolUseStopReason = "tool_use";

    /// <summary>The answer reached one of the request's stop sequences, and ends before it.</summary>
    public const string StopSequenceStopReason = "stop_sequence";

    /// <summary>The model's response reached its output-token limit.</summary>
    public const string MaxTokensStopReason = "max_tokens";
}

public readonly record struct ClaudeUsage(
    long InputTokens,
    long OutputTokens,
    long CacheReadInputTokens,
    long CacheCreationInputTokens)
{
    /// <summary>All input the model read: fresh, cache-read and cache-written tokens.</summary>
    public long PromptTokens => InputTokens + CacheReadInputTokens + CacheCreationInputTokens;

    public static ClaudeUsage operator +(ClaudeUsage a, ClaudeUsage b) => new(
        a.InputTokens + b.InputTokens,
        a.OutputTokens + b.OutputTokens,
        a.CacheReadInputTokens + b.CacheReadInputTokens,
        a.CacheCreationInputTokens + b.CacheCreationInputTokens);

    public static ClaudeUsage operator -(ClaudeUsage a, ClaudeUsage b) => new(
        Math.Max(0, a.InputTokens - b.InputTokens),
        Math.Max(0, a.OutputTokens - b.OutputTokens),
        Math.Max(0, a.CacheReadInputTokens - b.CacheReadInputTokens),
        Math.Max(0, a.CacheCreationInputTokens - b.CacheCreationInputTokens));
}

/// <param name="DurationMs">The CLI's wall time for the turn.</param>
/// <param name="DurationApiMs">Time spent waiting on the API.</param>
/// <param name="TimeToRequestMs">From the CLI's start to the API request leaving.</param>
/// <param name="TimeToFirstTokenMs">From the CLI's start to the first streamed token.</param>
public readonly record struct ClaudeTimings(long DurationMs, long DurationApiMs, long? TimeToRequestMs, long? TimeToFirstTokenMs);
