namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class WarmSparesTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_spare_that_keeps_dying_is_replaced_after_a_pause_that_doubles_each_time()
    {
        // A CLI that exits at once: every spare dies while it waits.
        using var pool = new PoolHarness(settings =>
        {
            settings.CliPath = "/bin/false";
            settings.Models[0].WarmSpares = 1;
        });
        using var started = pool.Collect("claudeproxy.cli.processes");
        var spares = pool.Spares();

        await spares.RefillAsync();
        await WaitForLossesAsync(pool, 1);
        // Lost once: the next after 1 s.
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await WaitForLossesAsync(pool, 2);
        // Lost twice: not after 1 s, after 2.
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await Task.Delay(300, Cancel);
        var afterOneSecond = Starts(started);
        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await WaitForStartsAsync(started, 3);
        await WaitForLossesAsync(pool, 3);

        Assert.Equal(2, afterOneSecond);
        spares.Stop();
    }

    [Fact]
    public async Task A_new_chat_takes_a_waiting_spare_and_its_replacement_follows()
    {
        using var pool = new PoolHarness(settings => settings.Models[0].WarmSpares = 1);
        using var started = pool.Collect("claudeproxy.cli.processes");
        using var turns = pool.Collect("claudeproxy.cli.turns");
        var spares = pool.Spares();
        await spares.RefillAsync();
        await WaitForStartsAsync(started, 1);

        var claimed = spares.TryClaimForChat(PoolHarness.Invocation("""{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hi"}]}}"""));
        var missing = spares.TryClaimForChat(PoolHarness.Invocation("{}", cliModel: "opus"));

        Assert.NotNull(claimed);
        Assert.Null(missing);
        Assert.Equal("warm", Assert.Single(turns.GetMeasurementSnapshot()).Tags["start"]);
        await WaitForStartsAsync(started, 2);
        await claimed.Exited.WaitAsync(TimeSpan.FromSeconds(10), Cancel);
        spares.Stop();
    }

    private static int Starts(Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<long> processes) =>
        processes.GetMeasurementSnapshot().Count(m => m.Value > 0);

    private static async Task WaitForStartsAsync(Microsoft.Extensions.Diagnostics.Metrics.Testing.MetricCollector<long> processes, int count)
    {
        while (Starts(processes) < count)
        {
            await processes.WaitForMeasurementsAsync(processes.GetMeasurementSnapshot().Count + 1, TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>Waits until the spares have logged <paramref name="count"/> losses, each with its replacement scheduled.</summary>
    private static async Task WaitForLossesAsync(PoolHarness pool, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (pool.Logs.GetSnapshot().Count(r => r.Message.Contains("ended while it waited", StringComparison.Ordinal)) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Fewer than {count} spares were lost.");
            await Task.Delay(20, Cancel);
        }
    }
}
