using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// The processes kept up between the turns of kept conversations (by id or by history), one per session: the CLI
/// holds the history in memory, so the next turn is one more line on the same stdin. A process is ended when it has been
/// idle for <see cref="ClaudeBackendOptions.KeptProcessIdleTimeout"/>, has served
/// <see cref="ClaudeBackendOptions.MaxTurnsPerProcess"/> turns, has grown beyond
/// <see cref="ClaudeBackendOptions.MaxProcessMemoryMB"/>, left its last turn unclean, or is pushed out by newer
/// conversations beyond <see cref="ClaudeBackendOptions.MaxKeptProcesses"/>; the conversation then resumes cold from its
/// session file. A session is resumed only once its last process is gone (<see cref="WaitUntilClosedAsync"/>).
/// </summary>
internal sealed partial class KeptProcesses(
    ClaudeCliMetrics metrics,
    IOptions<ClaudeBackendOptions> options,
    TimeProvider timeProvider,
    ILogger<KeptProcesses> logger)
{
    /// <summary>How long a process whose stdin was closed may take to write its session out and exit (≈30 ms).</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    /// <summary>Idle times from here on are no timeout at all (a timer takes at most about 49 days).</summary>
    private static readonly TimeSpan MaxIdleTimeout = TimeSpan.FromDays(30);

    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, KeptProcess> _kept = [];
    private readonly Dictionary<Guid, Task> _closing = [];
    private volatile bool _stopping;

    /// <summary>The sessions whose process is kept now.</summary>
    public IReadOnlyCollection<Guid> Sessions
    {
        get
        {
            lock (_gate)
            {
                return [.. _kept.Keys];
            }
        }
    }

    /// <summary>The process kept for <paramref name="sessionId"/>, if one still runs; it is no longer kept, as its next turn starts.</summary>
    public ResidentClaudeProcess? Take(Guid sessionId)
    {
        KeptProcess? kept;
        lock (_gate)
        {
            _kept.Remove(sessionId, out kept);
        }

        if (kept is null)
        {
            return null;
        }

        Release(kept);
        return kept.Process.Exited.IsCompleted ? null : kept.Process;
    }

    /// <summary>Waits until the process last closed for <paramref name="sessionId"/> has written its session out and exited.</summary>
    public async Task WaitUntilClosedAsync(Guid sessionId, CancellationToken cancellationToken)
    {
        Task? closing;
        lock (_gate)
        {
            closing = _closing.GetValueOrDefault(sessionId);
        }

        if (closing is not null)
        {
            await closing.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Starts a turn of <paramref name="sessionId"/> on <paramref name="process"/>; once it is over, the process is kept or ended.</summary>
    public IClaudeCliRun BeginTurn(Guid sessionId, ResidentClaudeProcess process, ClaudeCliInvocation invocation) =>
        process.BeginTurn(invocation, turn => OnTurnEnded(sessionId, turn));

    /// <summary>Watches a process new to the session: when it exits by itself it is no longer kept.</summary>
    public void Track(Guid sessionId, ResidentClaudeProcess process) =>
        _ = process.Exited.ContinueWith(_ => Forget(sessionId, process), TaskScheduler.Default);

    /// <summary>Ends <paramref name="process"/> the way the CLI ends by itself (stdin closed), so its session file is complete.</summary>
    public void Close(Guid sessionId, ResidentClaudeProcess process, string reason)
    {
        metrics.Recycled(reason);
        LogRecycled(logger, sessionId, reason, process.TurnsServed);
        var closing = process.CloseAsync(CloseGrace);
        lock (_gate)
        {
            _closing[sessionId] = closing;
        }

        _ = closing.ContinueWith(
            done =>
            {
                lock (_gate)
                {
                    if (_closing.GetValueOrDefault(sessionId) == done)
                    {
                        _closing.Remove(sessionId);
                    }
                }
            },
            TaskScheduler.Default);
    }

    /// <summary>Ends the process kept for <paramref name="sessionId"/>, if any, and completes once it has exited.</summary>
    public async Task EndAsync(Guid sessionId)
    {
        KeptProcess? kept;
        lock (_gate)
        {
            _kept.Remove(sessionId, out kept);
        }

        if (kept is not null)
        {
            Release(kept);
            Close(sessionId, kept.Process, "retention");
        }

        await WaitUntilClosedAsync(sessionId, CancellationToken.None);
    }

    /// <summary>Ends every kept process the way it ends by itself, waiting up to 2 s for their session files.</summary>
    public async Task StopAsync()
    {
        _stopping = true;
        List<(Guid, KeptProcess)> kept;
        lock (_gate)
        {
            kept = [.. _kept.Select(entry => (entry.Key, entry.Value))];
            _kept.Clear();
        }

        foreach (var (sessionId, entry) in kept)
        {
            Release(entry);
            Close(sessionId, entry.Process, "stopping");
        }

        Task[] closing;
        lock (_gate)
        {
            closing = [.. _closing.Values];
        }

        await Task.WhenAll(closing).WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>Keeps the process for the conversation's next turn, or ends it if it is unfit or over a bound.</summary>
    private void OnTurnEnded(Guid sessionId, ResidentClaudeTurn turn)
    {
        var process = turn.Process;
        if (process.Exited.IsCompleted)
        {
            return;
        }

        process.SessionRemembered |= turn.Succeeded;
        var settings = options.Value;
        var keepAlive = process.KeepAlive ?? settings.KeptProcessIdleTimeout;
        var reason =
            !turn.LeftProcessClean || !process.SessionRemembered ? "unclean"
            : _stopping ? "stopping"
            : keepAlive <= TimeSpan.Zero ? "keep_alive"
            : process.TurnsServed >= settings.MaxTurnsPerProcess ? "turns"
            : process.ResidentMemoryBytes() > settings.MaxProcessMemoryMB * 1024L * 1024L ? "memory"
            : settings.MaxKeptProcesses == 0 ? "evicted"
            : null;
        if (reason is not null)
        {
            Close(sessionId, process, reason);
            return;
        }

        List<(Guid, KeptProcess)> evicted = [];
        lock (_gate)
        {
            if (_kept.Remove(sessionId, out var previous))
            {
                // Cannot happen while turns of a conversation take its lock in turn; if it did, the older one goes.
                evicted.Add((sessionId, previous));
            }

            // A client's "keep it loaded for ever" (a negative keep_alive) leaves it to the other bounds.
            var idleTimer = timeProvider.CreateTimer(
                _ => EvictIdle(sessionId, process), null, keepAlive >= MaxIdleTimeout ? Timeout.InfiniteTimeSpan : keepAlive, Timeout.InfiniteTimeSpan);
            _kept[sessionId] = new KeptProcess(
                process, idleTimer, timeProvider.GetTimestamp(), keepAlive >= MaxIdleTimeout ? null : timeProvider.GetUtcNow() + keepAlive);
            metrics.Kept(1);
            while (_kept.Count > settings.MaxKeptProcesses)
            {
                // The conversation idle the longest makes room.
                var (oldestId, oldest) = _kept.MinBy(entry => entry.Value.KeptSince);
                _kept.Remove(oldestId);
                evicted.Add((oldestId, oldest));
            }
        }

        foreach (var (id, kept) in evicted)
        {
            Release(kept);
            Close(id, kept.Process, "evicted");
        }
    }

    private void EvictIdle(Guid sessionId, ResidentClaudeProcess process)
    {
        if (Forget(sessionId, process))
        {
            Close(sessionId, process, "idle");
        }
    }

    /// <summary>Drops the process from the kept ones if it is still kept for that session; true if it was.</summary>
    private bool Forget(Guid sessionId, ResidentClaudeProcess process)
    {
        KeptProcess? kept;
        lock (_gate)
        {
            if (!_kept.TryGetValue(sessionId, out kept) || kept.Process != process)
            {
                return false;
            }

            _kept.Remove(sessionId);
        }

        Release(kept);
        return true;
    }

    /// <summary>What leaving the kept ones takes: its idle timer stops, and it is no longer counted.</summary>
    private void Release(KeptProcess kept)
    {
        kept.IdleTimer.Dispose();
        metrics.Kept(-1);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ending the Claude CLI process of session {SessionId} ({Reason}) after {Turns} turns")]
    private static partial void LogRecycled(ILogger logger, Guid sessionId, string reason, int turns);

    /// <param name="ExpiresAt">When its idle timer ends it; null when only the other bounds do.</param>
    private sealed record KeptProcess(ResidentClaudeProcess Process, ITimer IdleTimer, long KeptSince, DateTimeOffset? ExpiresAt);

    /// <summary>The processes kept between turns now (a process in a turn is not among them).</summary>
    public IReadOnlyList<Contract.ClaudeLoadedProcess> Loaded()
    {
        lock (_gate)
        {
            return [.. _kept.Values.Select(k => new Contract.ClaudeLoadedProcess(k.Process.CliModel, k.Process.ResidentMemoryBytes(), k.ExpiresAt))];
        }
    }
}
