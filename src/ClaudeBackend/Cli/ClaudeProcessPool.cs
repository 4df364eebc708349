using System.Collections.Concurrent;
using System.Threading.Channels;
using ClaudeProxy.ClaudeBackend.StreamJson;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Where turns get their CLI processes, so that a turn rarely waits for the CLI's cold start (≈0.6 s, 0.75 CPU-seconds).
/// <list type="bullet">
/// <item>A new chat takes a warm spare: one of <see cref="ClaudeModelOptions.WarmSpares"/> processes per model, started
/// and waiting on stdin. Its system prompt arrives in an <c>initialize</c> control request, its prompt follows, stdin
/// closes, and it ends after that one turn. The pool refills in the background.</item>
/// <item>A kept conversation keeps its own process between turns (session affinity): the CLI holds the history in
/// memory, so the next turn is one more line on the same stdin. The process is ended when it has been idle too long, has
/// served enough turns, grows too large, is pushed out by newer conversations, or the next turn wants another model,
/// tool list or system prompt; the conversation then resumes cold from its session file (<c>--resume</c>).</item>
/// </list>
/// A process never serves two conversations: the CLI's <c>/clear</c> would need slash commands on and still leaves a
/// command transcript in the next conversation's prompt, so a process is ended instead of being cleared.
/// </summary>
internal sealed partial class ClaudeProcessPool(
    CliWrapClaudeLauncher cold,
    ClaudeModelCatalog catalog,
    ClaudeCliMetrics metrics,
    IOptions<ClaudeBackendOptions> options,
    TimeProvider timeProvider,
    ILogger<ClaudeProcessPool> logger) : IClaudeCliLauncher
{
    /// <summary>How long a process whose stdin was closed may take to write its session out and exit (≈30 ms).</summary>
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, ConcurrentQueue<Spare>> _spares = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _refill = new(1, 1);

    // Kept processes by session id, and the ones being closed: a session is resumed only once its last process is gone.
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, KeptProcess> _kept = [];
    private readonly Dictionary<Guid, Task> _closing = [];
    private volatile bool _stopping;
    private int _lostSpares;

    public async ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        if (invocation.SessionId is { } sessionId)
        {
            return await StartKeptAsync(sessionId, invocation, cancellationToken);
        }

        if (invocation.Tools is null or { Count: 0 } && TryTake(invocation.CliModel, out var spare))
        {
            spare.Claim(await SystemPromptOfAsync(invocation, cancellationToken), invocation.InputLine);
            Interlocked.Exchange(ref _lostSpares, 0);
            metrics.TurnStarted("warm");
            _ = RefillAsync();
            return spare.Process;
        }

        metrics.TurnStarted("cold");
        return await cold.StartAsync(invocation, cancellationToken);
    }

    private async Task<IClaudeCliRun> StartKeptAsync(Guid sessionId, ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var fingerprint = $"{invocation.CliModel}\n{string.Join(',', invocation.Tools ?? [])}\n{await SystemPromptOfAsync(invocation, cancellationToken)}";
        ResidentClaudeProcess? resident = null;
        lock (_gate)
        {
            if (_kept.Remove(sessionId, out var kept))
            {
                kept.IdleTimer.Dispose();
                metrics.Kept(-1);
                resident = kept.Process;
            }
        }

        if (resident is not null)
        {
            if (resident.Fingerprint == fingerprint && !resident.Exited.IsCompleted)
            {
                metrics.TurnStarted("kept");
                return resident.BeginTurn(invocation.InputLine, turn => OnTurnEndedAsync(sessionId, turn));
            }

            // Another model, tool list or system prompt: a process started that way resumes the session.
            Close(sessionId, resident, "changed");
        }

        Task? closing;
        lock (_gate)
        {
            closing = _closing.GetValueOrDefault(sessionId);
        }

        if (closing is not null)
        {
            // Its session file must be complete before another process resumes it.
            await closing.WaitAsync(cancellationToken);
        }

        metrics.TurnStarted("cold");
        var process = new ResidentClaudeProcess(cold, invocation, fingerprint);
        _ = process.Exited.ContinueWith(_ => Forget(sessionId, process), TaskScheduler.Default);
        return process.BeginTurn(invocation.InputLine, turn => OnTurnEndedAsync(sessionId, turn));
    }

    /// <summary>Keeps the process for the conversation's next turn, or ends it if it is unfit or over a bound.</summary>
    private ValueTask OnTurnEndedAsync(Guid sessionId, ResidentClaudeTurn turn)
    {
        var process = turn.Process;
        if (process.Exited.IsCompleted)
        {
            return ValueTask.CompletedTask;
        }

        process.SessionRemembered |= turn.Succeeded;
        var settings = options.Value;
        var reason =
            !turn.LeftProcessClean || !process.SessionRemembered ? "unclean"
            : _stopping ? "stopping"
            : process.TurnsServed >= settings.MaxTurnsPerProcess ? "turns"
            : process.ResidentMemoryBytes() > settings.MaxProcessMemoryMB * 1024L * 1024L ? "memory"
            : settings.MaxKeptProcesses == 0 ? "evicted"
            : null;
        if (reason is not null)
        {
            Close(sessionId, process, reason);
            return ValueTask.CompletedTask;
        }

        List<(Guid, KeptProcess)> evicted = [];
        lock (_gate)
        {
            if (_kept.Remove(sessionId, out var previous))
            {
                // Cannot happen while turns of a conversation take its lock in turn; if it did, the older one goes.
                evicted.Add((sessionId, previous));
            }

            var idleTimer = timeProvider.CreateTimer(_ => EvictIdle(sessionId, process), null, settings.KeptProcessIdleTimeout, Timeout.InfiniteTimeSpan);
            _kept[sessionId] = new KeptProcess(process, idleTimer, timeProvider.GetTimestamp());
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
            kept.IdleTimer.Dispose();
            metrics.Kept(-1);
            Close(id, kept.Process, "evicted");
        }

        return ValueTask.CompletedTask;
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

        kept.IdleTimer.Dispose();
        metrics.Kept(-1);
        return true;
    }

    private void Close(Guid sessionId, ResidentClaudeProcess process, string reason)
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

    private static async Task<string?> SystemPromptOfAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken) =>
        invocation.SystemPromptFile is { } file ? await File.ReadAllTextAsync(file, cancellationToken) : null;

    /// <summary>Starts the spares the configuration asks for, replacing any that ended while they waited.</summary>
    public async Task RefillAsync()
    {
        // One refill at a time, each counting afresh: a spare taken during a refill is made up by the next one.
        await _refill.WaitAsync();
        try
        {
            foreach (var model in catalog.Models.Where(m => m.WarmSpares > 0))
            {
                var spares = _spares.GetOrAdd(model.CliModel, static _ => new ConcurrentQueue<Spare>());
                var missing = model.WarmSpares - spares.Count(s => !s.Process.Exited.IsCompleted);
                for (var i = 0; i < missing && !_stopping; i++)
                {
                    var spare = new Spare(cold, model.CliModel);
                    spares.Enqueue(spare);
                    metrics.SpareReady(1);
                    _ = spare.Process.Exited.ContinueWith(exited => OnSpareEnded(spare, exited.Result), TaskScheduler.Default);
                }
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogRefillFailed(logger, exception);
        }
        finally
        {
            _refill.Release();
        }
    }

    /// <summary>Ends kept processes the way they end by themselves (so their sessions are complete), then every other.</summary>
    public async Task StopAllAsync()
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
            entry.IdleTimer.Dispose();
            metrics.Kept(-1);
            Close(sessionId, entry.Process, "stopping");
        }

        Task[] closing;
        lock (_gate)
        {
            closing = [.. _closing.Values];
        }

        await Task.WhenAll(closing).WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(_ => { }, TaskScheduler.Default);
        await cold.StopAllAsync();
    }

    private bool TryTake(string cliModel, out Spare spare)
    {
        spare = null!;
        if (!_spares.TryGetValue(cliModel, out var spares))
        {
            return false;
        }

        while (spares.TryDequeue(out var candidate))
        {
            metrics.SpareReady(-1);
            if (!candidate.Process.Exited.IsCompleted)
            {
                spare = candidate;
                return true;
            }
        }

        return false;
    }

    private void OnSpareEnded(Spare spare, ClaudeCliExit exit)
    {
        spare.Cleanup();
        if (spare.Claimed || _stopping)
        {
            return;
        }

        // It ended while waiting (crash, kill, or it never started): TryTake discards it, and a successor follows, but
        // after a pause that grows with every loss, so a missing or broken CLI cannot turn the pool into a spawn loop.
        var lost = Interlocked.Increment(ref _lostSpares);
        var pause = exit.StartFailure is not null ? TimeSpan.FromSeconds(30) : TimeSpan.FromSeconds(Math.Min(60, 1 << Math.Min(lost - 1, 6)));
        LogSpareEnded(logger, spare.CliModel, exit.StartFailure?.Message ?? $"exit code {exit.ExitCode}", pause.TotalSeconds);
        _ = Task.Delay(pause).ContinueWith(_ => RefillAsync(), TaskScheduler.Default);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A warm Claude CLI process for --model {Model} ended while it waited ({Reason}); replacing it in {Seconds} s")]
    private static partial void LogSpareEnded(ILogger logger, string model, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not start warm Claude CLI processes")]
    private static partial void LogRefillFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ending the Claude CLI process of session {SessionId} ({Reason}) after {Turns} turns")]
    private static partial void LogRecycled(ILogger logger, Guid sessionId, string reason, int turns);

    private sealed record KeptProcess(ResidentClaudeProcess Process, ITimer IdleTimer, long KeptSince);

    private sealed class Spare
    {
        private readonly Channel<string> _input = Channel.CreateUnbounded<string>();
        private readonly string _workingDirectory;

        public Spare(CliWrapClaudeLauncher cold, string cliModel)
        {
            CliModel = cliModel;
            _workingDirectory = Directory.CreateTempSubdirectory("claudeproxy-warm-").FullName;
            var invocation = new ClaudeCliInvocation(cliModel, InputLine: "", _workingDirectory, ClaudeSessionMode.Ephemeral, SessionId: null, SystemPromptFile: null);
            Process = cold.Start(invocation, _input.Reader);
        }

        public string CliModel { get; }

        public ClaudeCliProcess Process { get; }

        public bool Claimed { get; private set; }

        /// <summary>Gives the waiting process its one turn; stdin closes after it, so the process ends with the turn.</summary>
        public void Claim(string? systemPrompt, string inputLine)
        {
            Claimed = true;
            _input.Writer.TryWrite(CliControlRequest.Initialize(systemPrompt));
            _input.Writer.TryWrite(inputLine);
            _input.Writer.TryComplete();
        }

        public void Cleanup() => TemporaryPaths.TryDelete(_workingDirectory);
    }
}
