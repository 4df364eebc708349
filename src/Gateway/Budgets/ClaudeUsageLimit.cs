using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms.Telemetry;

namespace ClaudeProxy.Gateway.Budgets;

/// <summary>
/// Whether the Claude login is rate limited, as the last Claude turn that hit a limit reported it (a
/// <see cref="ClaudeErrorKind.RateLimited"/> failure with the time until it resets: a subscription's usage limit, or the
/// API's 429 and its retry-after), so that requests for a Claude model with a fallback go to it until then instead of
/// to a CLI that would refuse them. With workers, each with a login of its own, one worker's limit counts for all.
/// </summary>
internal sealed class ClaudeUsageLimit
{
    private readonly TimeProvider _timeProvider;
    private long _limitedUntilTicks;

    public ClaudeUsageLimit(TimeProvider timeProvider, IMeterFactory meterFactory)
    {
        _timeProvider = timeProvider;
        meterFactory.Create(GenAiMetrics.MeterName).CreateObservableGauge("claudeproxy.usage_limit.resets_at", () => LimitedUntil?.ToUnixTimeSeconds() ?? 0, "s",
            "When the Claude login's usage limit resets (Unix time), as the last turn that hit it reported; 0 while it is not limited.");
    }

    /// <summary>Until when the login is limited; null when it is not (as far as a turn has said).</summary>
    public DateTimeOffset? LimitedUntil
    {
        get
        {
            var until = new DateTimeOffset(Interlocked.Read(ref _limitedUntilTicks), TimeSpan.Zero);
            return until > _timeProvider.GetUtcNow() ? until : null;
        }
    }

    /// <summary>Takes note of a failed Claude turn: a rate limit with its reset time limits the login until then.</summary>
    public void Observe(ClaudeBackendError error)
    {
        if (error is { Kind: ClaudeErrorKind.RateLimited, RetryAfterSeconds: > 0 and var seconds })
        {
            Interlocked.Exchange(ref _limitedUntilTicks, _timeProvider.GetUtcNow().AddSeconds(seconds).UtcTicks);
        }
    }

    /// <summary>A turn that succeeded says the limit is over, whatever its reset time said.</summary>
    public void Lift() => Interlocked.Exchange(ref _limitedUntilTicks, 0);
}
