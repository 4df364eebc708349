using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The CLI's real figures in the units clients expect. Durations the CLI does not report stay null (and are left
/// out), never invented.
/// </summary>
internal readonly record struct TurnMetrics(
    long PromptTokens,
    long OutputTokens,
    long CachedTokens,
    long TotalDurationNs,
    long? LoadDurationNs,
    long? PromptEvalDurationNs,
    long? EvalDurationNs)
{
    private const long NanosecondsPerMillisecond = 1_000_000;

    public static TurnMetrics From(ClaudeTurnResult result, TimeSpan elapsed)
    {
        var timings = result.Timings;
        return new TurnMetrics(
            result.Usage.PromptTokens,
            result.Usage.OutputTokens,
            result.Usage.CacheReadInputTokens,
            (long)(elapsed.TotalMilliseconds * NanosecondsPerMillisecond),
            // Ollama's "load" is the time before the model sees the prompt: the process start-up (what the gateway
            // waited beyond the CLI's own turn time) plus the CLI's time until its API request left.
            PositiveNs((long)Math.Max(0, elapsed.TotalMilliseconds - timings.DurationMs) + (timings.TimeToRequestMs ?? 0)),
            PositiveNs(timings.TimeToFirstTokenMs - timings.TimeToRequestMs),
            PositiveNs(timings.DurationMs - timings.TimeToFirstTokenMs));
    }

    /// <summary>Ollama's <c>done_reason</c> / OpenAI's <c>finish_reason</c>.</summary>
    public static string FinishReason(ClaudeTurnResult result) =>
        result.StopReason is "max_tokens" or "model_context_window_exceeded" ? "length" : "stop";

    private static long? PositiveNs(long? milliseconds) =>
        milliseconds is > 0 and var ms ? ms * NanosecondsPerMillisecond : null;
}
