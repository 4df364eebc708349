using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms.Telemetry;

internal static class ClaudeTurnObservation
{
    /// <summary>Feeds one event of a Claude turn to its timer: the first token, the login's rate limits, then the CLI's real figures or the error.</summary>
    public static void Observe(this GenAiRequestTimer? timer, ClaudeStreamEvent streamEvent)
    {
        switch (streamEvent)
        {
            case TextDelta or ThinkingDelta:
                timer?.MarkFirstToken();
                break;
            case TurnCompleted { Result: var result }:
                timer?.Complete(
                    result.Usage.PromptTokens,
                    result.Usage.OutputTokens,
                    result.ResponseModel,
                    result.Usage.CacheReadInputTokens,
                    result.Usage.CacheCreationInputTokens,
                    result.CostUsd,
                    result.Timings.DurationMs > 0 ? TimeSpan.FromMilliseconds(result.Timings.DurationMs) : null,
                    result.Timings.TimeToFirstTokenMs is > 0 and var ttft ? TimeSpan.FromMilliseconds(ttft) : null);
                break;
            case TurnFailed { Error: var error }:
                timer?.Fail(error);
                break;
            case RateLimitReported { RateLimit: var rateLimit }:
                timer?.ReportRateLimit(rateLimit);
                break;
        }
    }
}
