using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ClaudeProxy.Transforms.Telemetry;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Budgets;

/// <summary>A budget that is spent: whose, how much of it, and when its period starts again.</summary>
internal sealed record SpentBudget(string Budget, BudgetOptions Limit, double SpentUsd, DateTimeOffset ResetsAt)
{
    /// <summary>What the client is told: which budget, what was spent of what, and when it resets.</summary>
    public string Message =>
        FormattableString.Invariant($"The {Budget} budget of ${Limit.Usd:0.######} per {Limit.Period.ToString().ToLowerInvariant()} is spent (${SpentUsd:0.######} so far); it resets at {ResetsAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}.");
}

/// <summary>
/// The gateway's budgets (<see cref="GatewayOptions.Budget"/>, and each API key's <see cref="ApiKeyOptions.Budget"/>)
/// against what Claude turns cost (<see cref="ISpendLedger"/>): whether a turn may start, and what is spent and left. Also
/// the <c>claudeproxy_budget_usd</c> and <c>claudeproxy_budget_spent_usd</c> gauges, as last counted.
/// </summary>
internal sealed class ClaudeBudgets
{
    public const string GatewayBudget = "gateway";

    private readonly IOptions<GatewayOptions> _options;
    private readonly ISpendLedger _ledger;
    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<string, double> _lastSpent = new(StringComparer.Ordinal);

    public ClaudeBudgets(IOptions<GatewayOptions> options, ISpendLedger ledger, TimeProvider timeProvider, IMeterFactory meterFactory)
    {
        (_options, _ledger, _timeProvider) = (options, ledger, timeProvider);
        var meter = meterFactory.Create(GenAiMetrics.MeterName);
        meter.CreateObservableGauge("claudeproxy.budget.usd", () => Budgets().Select(b => Measure(b.Limit.Usd, b)), "{USD}",
            "Each budget's limit in US dollars per period: the gateway's and each API key's.");
        meter.CreateObservableGauge("claudeproxy.budget.spent.usd", () => Budgets().Select(b => Measure(_lastSpent.GetValueOrDefault(b.Name), b)), "{USD}",
            "What each budget's current period has spent so far, as last counted (before each Claude turn, and as each ends).");
    }

    /// <summary>
    /// Of the caller's budgets (the gateway's, its key's) that are spent, the one that resets last, which is when a turn
    /// may start again; null if one may start now.
    /// </summary>
    /// <param name="apiKey">The name of the caller's API key; null without one.</param>
    public async ValueTask<SpentBudget?> FindSpentAsync(string? apiKey, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        SpentBudget? latest = null;
        Dictionary<BudgetPeriod, IReadOnlyDictionary<SpendKey, double>> periods = [];
        foreach (var budget in BudgetsOf(apiKey))
        {
            var spent = await SpentAsync(budget, periods, now, cancellationToken);
            var resetsAt = BudgetWindow.Of(budget.Limit.Period, now).End;
            if (spent >= budget.Limit.Usd && (latest is null || resetsAt > latest.ResetsAt))
            {
                latest = new SpentBudget(budget.Name, budget.Limit, spent, resetsAt);
            }
        }

        return latest;
    }

    /// <summary>Counts a finished turn's cost against its key's name (null: no key) and model.</summary>
    public void Record(string? apiKey, string model, double usd)
    {
        _ledger.Add(new SpendKey(apiKey ?? "", model), usd, _timeProvider.GetUtcNow());
        foreach (var budget in BudgetsOf(apiKey))
        {
            _lastSpent.AddOrUpdate(budget.Name, usd, (_, spent) => spent + usd);
        }
    }

    /// <summary>
    /// The current periods' spend per key and model, and the budgets with what is left: everyone's, or only what
    /// <paramref name="apiKey"/> may see (its own and the gateway's).
    /// </summary>
    public async ValueTask<UsageReport> ReportAsync(string? apiKey, bool everyone, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        Dictionary<BudgetPeriod, IReadOnlyDictionary<SpendKey, double>> periods = [];
        foreach (var period in Enum.GetValues<BudgetPeriod>())
        {
            periods[period] = await _ledger.SpentAsync(period, now, cancellationToken);
        }

        List<BudgetState> budgets = [];
        foreach (var budget in everyone ? Budgets() : BudgetsOf(apiKey))
        {
            var spent = await SpentAsync(budget, periods, now, cancellationToken);
            budgets.Add(new BudgetState(budget.Name, budget.Limit.Period.ToString().ToLowerInvariant(), budget.Limit.Usd, spent,
                Math.Max(0, budget.Limit.Usd - spent), BudgetWindow.Of(budget.Limit.Period, now).End));
        }

        var spend = periods.Values.SelectMany(p => p.Keys).Distinct()
            .Where(key => everyone || key.ApiKey == (apiKey ?? ""))
            .OrderBy(key => key.ApiKey, StringComparer.Ordinal).ThenBy(key => key.Model, StringComparer.Ordinal)
            .Select(key => new ModelSpend(key.ApiKey.Length > 0 ? key.ApiKey : null, key.Model,
                periods[BudgetPeriod.Day].GetValueOrDefault(key), periods[BudgetPeriod.Week].GetValueOrDefault(key), periods[BudgetPeriod.Month].GetValueOrDefault(key)))
            .ToList();
        return new UsageReport(now, budgets, spend);
    }

    /// <param name="periods">The counts of the periods read so far in this call: budgets of the same period (the gateway's
    /// and a key's) read the ledger, Redis before every Claude turn, once.</param>
    private async ValueTask<double> SpentAsync(
        (string Name, string? ApiKey, BudgetOptions Limit) budget, Dictionary<BudgetPeriod, IReadOnlyDictionary<SpendKey, double>> periods, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        if (!periods.TryGetValue(budget.Limit.Period, out var counts))
        {
            periods[budget.Limit.Period] = counts = await _ledger.SpentAsync(budget.Limit.Period, now, cancellationToken);
        }

        var spent = counts.Where(c => budget.ApiKey is null || c.Key.ApiKey == budget.ApiKey).Sum(c => c.Value);
        _lastSpent[budget.Name] = spent;
        return spent;
    }

    /// <summary>The budgets a caller's turns count against: the gateway's, and its key's (null: no key).</summary>
    private IEnumerable<(string Name, string? ApiKey, BudgetOptions Limit)> BudgetsOf(string? apiKey) =>
        Budgets().Where(b => b.ApiKey is null || b.ApiKey == apiKey);

    /// <summary>The gateway's budget (for every caller) and each key's (<c>key:name</c>).</summary>
    private IEnumerable<(string Name, string? ApiKey, BudgetOptions Limit)> Budgets()
    {
        if (_options.Value.Budget is { } gateway)
        {
            yield return (GatewayBudget, null, gateway);
        }

        foreach (var key in _options.Value.ApiKeys.Where(k => k.Budget is not null))
        {
            yield return ($"key:{key.Name}", key.Name, key.Budget!);
        }
    }

    private static Measurement<double> Measure(double value, (string Name, string? ApiKey, BudgetOptions Limit) budget) =>
        new(value, new KeyValuePair<string, object?>("budget", budget.Name), new KeyValuePair<string, object?>("period", budget.Limit.Period.ToString().ToLowerInvariant()));
}

/// <summary>What <c>GET /api/usage</c> answers.</summary>
internal sealed record UsageReport(DateTimeOffset Now, IReadOnlyList<BudgetState> Budgets, IReadOnlyList<ModelSpend> Spend)
{
    /// <summary>The Claude login's usage limit as the last turn that hit one reported it (<see cref="ClaudeUsageLimit"/>).</summary>
    public UsageLimitState? UsageLimit { get; init; }

    /// <summary>Each Claude login's last reported rate-limit state (subscription logins report one).</summary>
    public IReadOnlyList<ReportedRateLimit> RateLimits { get; init; } = [];
}

/// <summary><c>rejected</c> until <see cref="ResetsAt"/> while the login is at its usage limit; <c>allowed</c> otherwise.</summary>
internal sealed record UsageLimitState(string Status, DateTimeOffset? ResetsAt);

/// <summary>A budget in its current period.</summary>
internal sealed record BudgetState(string Budget, string Period, double Usd, double SpentUsd, double RemainingUsd, DateTimeOffset ResetsAt);

/// <summary>What a key (null: requests without one) spent on a model in the current day, week and month.</summary>
internal sealed record ModelSpend(string? ApiKey, string Model, double DayUsd, double WeekUsd, double MonthUsd);
