using ClaudeProxy.ClaudeBackend.Cli;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class KeptProcessesTests : IDisposable
{
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(10);

    private readonly PoolHarness _pool = new(settings =>
    {
        settings.KeptProcessIdleTimeout = TimeSpan.FromMinutes(10);
        settings.MaxKeptProcesses = 2;
        settings.MaxTurnsPerProcess = 2;
    });

    [Fact]
    public async Task A_process_is_kept_after_its_turn_and_ended_once_idle_past_the_limit()
    {
        var kept = _pool.Kept();
        using var recycled = _pool.Collect("claudeproxy.cli.recycled");
        var (session, process) = _pool.StartConversation(kept);

        await PoolHarness.TurnAsync(kept, session, process);
        _pool.Time.Advance(TimeSpan.FromMinutes(9));
        var keptBefore = kept.Sessions;
        _pool.Time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal([session], keptBefore);
        Assert.Empty(kept.Sessions);
        Assert.Equal(0, (await process.Exited.WaitAsync(ExitWait, TestContext.Current.CancellationToken)).ExitCode);
        Assert.Equal("idle", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
    }

    [Fact]
    public async Task A_turns_keep_alive_sets_how_long_its_process_waits_and_zero_ends_it_after_the_turn()
    {
        var kept = _pool.Kept();
        using var recycled = _pool.Collect("claudeproxy.cli.recycled");
        var (longer, longerProcess) = _pool.StartConversation(kept);
        var (ended, endedProcess) = _pool.StartConversation(kept);

        await PoolHarness.TurnAsync(kept, longer, longerProcess, keepAlive: TimeSpan.FromHours(1));
        await PoolHarness.TurnAsync(kept, ended, endedProcess, keepAlive: TimeSpan.Zero);
        _pool.Time.Advance(TimeSpan.FromMinutes(30));

        Assert.Equal([longer], kept.Sessions);
        Assert.Equal(0, (await endedProcess.Exited.WaitAsync(ExitWait, TestContext.Current.CancellationToken)).ExitCode);
        Assert.Equal("keep_alive", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
        _pool.Time.Advance(TimeSpan.FromMinutes(30));
        Assert.Empty(kept.Sessions);
    }

    [Fact]
    public async Task Beyond_the_most_kept_processes_the_conversation_idle_the_longest_makes_room()
    {
        var kept = _pool.Kept();
        using var recycled = _pool.Collect("claudeproxy.cli.recycled");
        List<(Guid Session, ResidentClaudeProcess Process)> conversations = [];
        for (var i = 0; i < 3; i++)
        {
            var (session, process) = _pool.StartConversation(kept);
            await PoolHarness.TurnAsync(kept, session, process);
            conversations.Add((session, process));
            _pool.Time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(conversations.Skip(1).Select(c => c.Session).Order(), kept.Sessions.Order());
        await conversations[0].Process.Exited.WaitAsync(ExitWait, TestContext.Current.CancellationToken);
        Assert.False(conversations[2].Process.Exited.IsCompleted);
        Assert.Equal("evicted", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
    }

    [Fact]
    public async Task A_process_that_served_its_most_turns_is_ended_and_the_session_waits_for_it_to_close()
    {
        var kept = _pool.Kept();
        using var recycled = _pool.Collect("claudeproxy.cli.recycled");
        var (session, process) = _pool.StartConversation(kept);

        await PoolHarness.TurnAsync(kept, session, process);
        Assert.Same(process, kept.Take(session));
        await PoolHarness.TurnAsync(kept, session, process);
        await kept.WaitUntilClosedAsync(session, TestContext.Current.CancellationToken);

        Assert.True(process.Exited.IsCompleted);
        Assert.Empty(kept.Sessions);
        Assert.Equal("turns", Assert.Single(recycled.GetMeasurementSnapshot()).Tags["reason"]);
    }

    [Fact]
    public async Task Ending_a_session_closes_its_kept_process_before_it_returns()
    {
        var kept = _pool.Kept();
        var (session, process) = _pool.StartConversation(kept);
        await PoolHarness.TurnAsync(kept, session, process);

        await kept.EndAsync(session);

        Assert.True(process.Exited.IsCompleted);
        Assert.Null(kept.Take(session));
    }

    public void Dispose() => _pool.Dispose();
}
