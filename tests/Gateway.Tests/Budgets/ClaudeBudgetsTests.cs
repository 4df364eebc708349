using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Gateway.Budgets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ClaudeProxy.Gateway.Tests.Budgets;

public sealed class ClaudeBudgetsTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("2026-12-01T13:00:00Z", BudgetPeriod.Day, "day:2026-12-01", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")]
    [InlineData("2026-12-06T23:59:59Z", BudgetPeriod.Week, "week:2026-W49", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")]
    [InlineData("2026-11-30T00:00:00Z", BudgetPeriod.Week, "week:2026-W49", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")]
    [InlineData("2027-01-01T08:00:00Z", BudgetPeriod.Week, "week:2026-W53", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")]
    [InlineData("2026-12-31T23:00:00-02:00", BudgetPeriod.Month, "month:2027-01", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")]
    public void A_period_is_a_utc_day_an_iso_week_or_a_month(string at, BudgetPeriod period, string key, string start, string end)
    {
        var window = BudgetWindow.Of(period, DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(key, window.Key);
        Assert.Equal(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture), window.Start);
        Assert.Equal(DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture), window.End);
    }

    [Fact]
    public async Task A_key_budget_counts_only_its_turns_the_gateway_budget_all_and_a_new_period_starts_from_nothing()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var gateway = new GatewayOptions
        {
            Budget = new BudgetOptions { Usd = 1.0, Period = BudgetPeriod.Month },
            ApiKeys = [new ApiKeyOptions { Name = "alice", Key = "k", Budget = new BudgetOptions { Usd = 0.05, Period = BudgetPeriod.Day } }, new ApiKeyOptions { Name = "bob", Key = "k" }],
        };
        using var data = new TemporaryFolder();
        await using var ledger = new LocalSpendLedger(Options.Create(new ClaudeBackendOptions { DataDirectory = data.Path }), time, NullLogger<LocalSpendLedger>.Instance);
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var budgets = new ClaudeBudgets(Options.Create(gateway), ledger, time, meters.GetRequiredService<IMeterFactory>());

        budgets.Record("alice", "claude-sonnet:latest", 0.03);
        budgets.Record("bob", "claude-sonnet:latest", 0.5);
        var aliceUnder = await budgets.FindSpentAsync("alice", Cancel);
        budgets.Record("alice", "claude-haiku:latest", 0.02);
        var aliceSpent = await budgets.FindSpentAsync("alice", Cancel);
        var bob = await budgets.FindSpentAsync("bob", Cancel);
        time.Advance(TimeSpan.FromDays(1));
        var aliceNextDay = await budgets.FindSpentAsync("alice", Cancel);
        budgets.Record("bob", "claude-sonnet:latest", 0.5);
        var everyoneSpent = await budgets.FindSpentAsync("bob", Cancel);
        var report = await budgets.ReportAsync("alice", everyone: false, Cancel);

        Assert.Null(aliceUnder);
        Assert.Equal("key:alice", aliceSpent!.Budget);
        Assert.Equal(0.05, aliceSpent.SpentUsd, 9);
        Assert.Equal(DateTimeOffset.Parse("2026-12-02T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), aliceSpent.ResetsAt);
        Assert.Null(bob);
        Assert.Null(aliceNextDay);
        // The month's budget is everyone's: Bob's second half dollar spends it for him, and for Alice too.
        Assert.Equal("gateway", everyoneSpent!.Budget);
        Assert.Equal(1.05, everyoneSpent.SpentUsd, 9);
        Assert.Equal(["gateway", "key:alice"], report.Budgets.Select(b => b.Budget));
        Assert.Equal(0, report.Budgets[0].RemainingUsd);
        Assert.Equal(0.05, report.Budgets[1].RemainingUsd, 9);
        // Alice sees her own spend: nothing today, 5 cents this month, over two models.
        Assert.Equal([("claude-haiku:latest", 0.0, 0.02), ("claude-sonnet:latest", 0.0, 0.03)], report.Spend.Select(s => (s.Model, s.DayUsd, Math.Round(s.MonthUsd, 9))));
    }

    [Fact]
    public async Task The_count_survives_a_restart_and_keeps_only_the_current_periods()
    {
        using var data = new TemporaryFolder();
        var options = Options.Create(new ClaudeBackendOptions { DataDirectory = data.Path });
        var november = DateTimeOffset.Parse("2026-11-30T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        await using (var before = new LocalSpendLedger(options, TimeProvider.System, NullLogger<LocalSpendLedger>.Instance))
        {
            before.Add(new SpendKey("alice", "m"), 0.25, november);
            before.Add(new SpendKey("alice", "m"), 0.5, november.AddDays(1));
        }

        await using var after = new LocalSpendLedger(options, TimeProvider.System, NullLogger<LocalSpendLedger>.Instance);

        Assert.Equal(0.5, (await after.SpentAsync(BudgetPeriod.Month, november.AddDays(1), Cancel))[new SpendKey("alice", "m")]);
        // The same ISO week holds both days.
        Assert.Equal(0.75, (await after.SpentAsync(BudgetPeriod.Week, november.AddDays(1), Cancel))[new SpendKey("alice", "m")]);
        Assert.Empty(await after.SpentAsync(BudgetPeriod.Month, november, Cancel));
    }

    [Fact]
    public async Task A_damaged_count_is_set_aside_for_a_human_and_the_count_starts_again()
    {
        using var data = new TemporaryFolder();
        await File.WriteAllTextAsync(System.IO.Path.Combine(data.Path, "spend.json"), "{ not json", Cancel);

        await using var ledger = new LocalSpendLedger(Options.Create(new ClaudeBackendOptions { DataDirectory = data.Path }), TimeProvider.System, NullLogger<LocalSpendLedger>.Instance);

        Assert.Empty(await ledger.SpentAsync(BudgetPeriod.Day, TimeProvider.System.GetUtcNow(), Cancel));
        Assert.Single(Directory.GetFiles(data.Path, "spend.json.corrupt-*"));
    }

    [Fact]
    public async Task Of_two_spent_budgets_the_one_that_resets_last_says_when_a_turn_may_start_again()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var gateway = new GatewayOptions
        {
            Budget = new BudgetOptions { Usd = 0.01, Period = BudgetPeriod.Day },
            ApiKeys = [new ApiKeyOptions { Name = "alice", Key = "k", Budget = new BudgetOptions { Usd = 0.01, Period = BudgetPeriod.Month } }],
        };
        using var data = new TemporaryFolder();
        await using var ledger = new LocalSpendLedger(Options.Create(new ClaudeBackendOptions { DataDirectory = data.Path }), time, NullLogger<LocalSpendLedger>.Instance);
        using var meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var budgets = new ClaudeBudgets(Options.Create(gateway), ledger, time, meters.GetRequiredService<IMeterFactory>());

        budgets.Record("alice", "claude-sonnet:latest", 0.02);

        var spent = await budgets.FindSpentAsync("alice", Cancel);
        Assert.Equal("key:alice", spent!.Budget);
        Assert.Equal(DateTimeOffset.Parse("2027-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), spent.ResetsAt);
    }

    /// <summary>A folder of its own for a test, removed with it.</summary>
    private sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("budgets-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
