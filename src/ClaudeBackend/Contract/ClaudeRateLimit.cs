namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// A subscription login's rate-limit state, as the CLI reports it after an API response (its <c>rate_limit_event</c>
/// line; a login with an API key gets none). Recorded in tests/Fixtures/rate_limits.
/// </summary>
/// <param name="Status"><c>allowed</c>, <c>allowed_warning</c> (served, but a window is nearly used up) or <c>rejected</c>.</param>
/// <param name="Window">The limit the state is about: <c>five_hour</c>, <c>seven_day</c>, …; null when no window is near.</param>
/// <param name="Utilization">How much of <paramref name="Window"/> is used (0 to 1), when the CLI reports it (with a warning).</param>
/// <param name="ResetsAt">When <paramref name="Window"/> resets.</param>
/// <param name="IsUsingOverage">Whether turns are drawn from paid extra usage.</param>
/// <param name="OverageStatus">The extra usage's own status, when reported.</param>
/// <param name="OverageResetsAt">When the extra usage resets, when reported.</param>
public sealed record ClaudeRateLimit(
    string Status,
    string? Window = null,
    double? Utilization = null,
    DateTimeOffset? ResetsAt = null,
    bool? IsUsingOverage = null,
    string? OverageStatus = null,
    DateTimeOffset? OverageResetsAt = null)
{
    public const string Allowed = "allowed";

    public const string AllowedWarning = "allowed_warning";

    public const string Rejected = "rejected";
}
