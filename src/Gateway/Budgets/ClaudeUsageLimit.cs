using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms.Telemetry;

namespace ClaudeProxy.Gateway.Budgets;

/// <summary>
/// What the Claude logins said of their limits. Whether the login is limited, as the last Claude turn that hit a limit
/// reported it (a <see cref="ClaudeErrorKind.RateLimited"/> failure with the time until it resets, or a subscription's
/// <c>rejected</c> rate-limit state), so that requests for a Claude model with a fallback go to it until then instead of
/// to a CLI that would refuse them; with workers, each with a login of its own, one worker's limit counts for all. And
/// each login's last reported rate-limit state (<see cref="ClaudeRateLimit"/>), for <c>/api/usage</c> and the gauges.
/// </summary>
internal sealed class ClaudeUsageLimit
{
    private static readonly string[] Statuses = [ClaudeRateLimit.Allowed, ClaudeRateLimit.AllowedWarning, ClaudeRateLimit.Rejected];

    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<string, ReportedRateLimit> _rateLimits = new(StringComparer.Ordinal);
    private long _limitedUntilTicks;

    public ClaudeUsageLimit(TimeProvider timeProvider, IMeterFactory meterFactory)
    {
        _timeProvider = timeProvider;
        var meter = meterFactory.Create(GenAiMetrics.MeterName);
        meter.CreateObservableGauge("claudeproxy.usage_limit.resets_at", () => LimitedUntil?.ToUnixTimeSeconds() ?? 0, "s",
            "When the Claude login's usage limit resets (Unix time), as the last turn that hit it reported; 0 while it is not limited.");
        meter.CreateObservableGauge("claudeproxy.rate_limit.status", ObserveStatuses, null,
            "1 for the rate-limit status a Claude login last reported (allowed, allowed_warning, rejected), 0 for the others; per login and window.");
        meter.CreateObservableGauge("claudeproxy.rate_limit.utilization", () => MeasureEach(r => r.Utilization), null,
            "How much of the window a Claude login last reported on is used (0 to 1); reported with a warning.");
        meter.CreateObservableGauge("claudeproxy.rate_limit.resets_at", () => MeasureEach(r => r.ResetsAt?.ToUnixTimeSeconds()), "s",
            "When the window a Claude login last reported on resets (Unix time).");
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

    /// <summary>Each login's last reported rate-limit state, by login, while it holds: one whose window has reset is over.</summary>
    public IReadOnlyList<ReportedRateLimit> RateLimits => [.. Current().OrderBy(r => r.Login, StringComparer.Ordinal)];

    /// <summary>Takes note of a failed Claude turn: a rate limit with its reset time limits the login until then.</summary>
    public void Observe(ClaudeBackendError error)
    {
        if (error is { Kind: ClaudeErrorKind.RateLimited, RateLimit: { Status: ClaudeRateLimit.Rejected, ResetsAt: { } resetsAt } })
        {
            // The subscription's own reset time, to the second (the retry-after counts from when the line was read).
            LimitUntil(resetsAt);
        }
        else if (error is { Kind: ClaudeErrorKind.RateLimited, RetryAfterSeconds: > 0 and var seconds })
        {
            LimitUntil(_timeProvider.GetUtcNow().AddSeconds(seconds));
        }
    }

    /// <summary>
    /// Takes note of the rate-limit state <paramref name="login"/> reported (<c>cli</c> for this gateway's own CLI, or the
    /// worker's name): a <c>rejected</c> state limits the login until its window resets.
    /// </summary>
    public void Observe(string login, ClaudeRateLimit rateLimit)
    {
        _rateLimits[login] = new ReportedRateLimit(login, rateLimit.Status, rateLimit.Window, rateLimit.Utilization, rateLimit.ResetsAt,
            rateLimit.IsUsingOverage, rateLimit.OverageStatus, rateLimit.OverageResetsAt, _timeProvider.GetUtcNow());
        if (rateLimit is { Status: ClaudeRateLimit.Rejected, ResetsAt: { } resetsAt })
        {
            LimitUntil(resetsAt);
        }
    }

    /// <summary>A turn that succeeded says the limit is over, whatever its reset time said.</summary>
    public void Lift() => Interlocked.Exchange(ref _limitedUntilTicks, 0);

    /// <summary>Limits the login until <paramref name="until"/>, or longer if a turn already said so.</summary>
    private void LimitUntil(DateTimeOffset until)
    {
        var current = Interlocked.Read(ref _limitedUntilTicks);
        while (until.UtcTicks > current && Interlocked.CompareExchange(ref _limitedUntilTicks, until.UtcTicks, current) is var seen && seen != current)
        {
            current = seen;
        }
    }

    private IEnumerable<ReportedRateLimit> Current()
    {
        var now = _timeProvider.GetUtcNow();
        return _rateLimits.Values.Where(r => r.ResetsAt is not { } resetsAt || resetsAt > now);
    }

    private IEnumerable<Measurement<int>> ObserveStatuses() =>
        Current().SelectMany(r => Statuses.Select(status => new Measurement<int>(r.Status == status ? 1 : 0, TagsOf(r).Append(new("status", status)))));

    private IEnumerable<Measurement<double>> MeasureEach(Func<ReportedRateLimit, double?> value) =>
        Current().Select(r => (Rate: r, Value: value(r))).Where(m => m.Value is not null).Select(m => new Measurement<double>(m.Value!.Value, TagsOf(m.Rate)));

    private static IEnumerable<KeyValuePair<string, object?>> TagsOf(ReportedRateLimit rateLimit) =>
        [new("login", rateLimit.Login), new("window", rateLimit.Window ?? "none")];
}

/// <summary>A login's last reported rate-limit state (<see cref="ClaudeRateLimit"/>), and when it was reported.</summary>
internal sealed record ReportedRateLimit(
    string Login,
    string Status,
    string? Window,
    double? Utilization,
    DateTimeOffset? ResetsAt,
    bool? IsUsingOverage,
    string? OverageStatus,
    DateTimeOffset? OverageResetsAt,
    DateTimeOffset ReportedAt);
