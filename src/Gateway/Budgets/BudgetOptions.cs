using System.ComponentModel.DataAnnotations;
using System.Globalization;

namespace ClaudeProxy.Gateway.Budgets;

/// <summary>A limit on what Claude turns may cost, in US dollars per period, counted from the CLI's own figures.</summary>
public sealed class BudgetOptions
{
    /// <summary>The most the period's turns may cost; a turn that would start beyond it is refused (or falls back).</summary>
    [Range(0.000001, 1e9)]
    public double Usd { get; set; }

    /// <summary>The calendar period the limit is for; the count starts again at the next one.</summary>
    public BudgetPeriod Period { get; set; } = BudgetPeriod.Month;
}

/// <summary>Calendar periods in UTC; a week starts on Monday (ISO 8601).</summary>
public enum BudgetPeriod
{
    Day,
    Week,
    Month,
}

/// <summary>One period that holds a moment: its name in the spend store, and its bounds.</summary>
internal readonly record struct BudgetWindow(string Key, DateTimeOffset Start, DateTimeOffset End)
{
    public static BudgetWindow Of(BudgetPeriod period, DateTimeOffset at)
    {
        var day = new DateTimeOffset(at.UtcDateTime.Date, TimeSpan.Zero);
        switch (period)
        {
            case BudgetPeriod.Day:
                return new($"day:{day:yyyy-MM-dd}", day, day.AddDays(1));
            case BudgetPeriod.Week:
                var monday = day.AddDays(-(((int)day.DayOfWeek + 6) % 7));
                return new($"week:{ISOWeek.GetYear(monday.UtcDateTime)}-W{ISOWeek.GetWeekOfYear(monday.UtcDateTime):00}", monday, monday.AddDays(7));
            default:
                var first = new DateTimeOffset(day.Year, day.Month, 1, 0, 0, 0, TimeSpan.Zero);
                return new($"month:{first:yyyy-MM}", first, first.AddMonths(1));
        }
    }
}
