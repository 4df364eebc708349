using System.Collections.Concurrent;
using System.Threading.Channels;
using ClaudeProxy.ClaudeBackend.Conversations;
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
/// <item>A new kept conversation (one with an <c>id</c>) takes a spare of <see cref="ClaudeModelOptions.WarmConversationSpares"/>,
/// started with a session id and working directory of its own, which the conversation then keeps.</item>
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
    ClaudeCliEnvironment cli,
    ClaudeModelCatalog catalog,
    ConversationStore conversations,
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
    private readonly SpareDemand _demand = new(timeProvider, options.Value.SpareDemandWindow);
    private ITimer? _demandCheck;
    private volatile bool _stopping;
    private int _lostSpares;

    public async ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        if (invocation.SessionId is { } sessionId)
        {
            return await StartKeptAsync(sessionId, invocation, cancellationToken);
        }

        if (FitsASpare(invocation))
        {
            _demand.Record(invocation.CliModel);
            if (TryTake(Spare.KeyOf(invocation.CliModel, forConversation: false), out var spare))
            {
                var process = spare.ClaimForChat(invocation.SystemPrompt, invocation.InputLine);
                OnSpareTaken();
                return process;
            }

            // None was left: the refill starts as many as the demand now calls for, unless spares are being lost (a
            // missing or broken CLI), when the growing pause before the next refill stands.
            if (Volatile.Read(ref _lostSpares) == 0)
            {
                _ = RefillAsync();
            }
        }

        metrics.TurnStarted("cold");
        return await cold.StartAsync(invocation, cancellationToken);
    }

    /// <summary>The periodic look at fading demand; while spares are being lost, the growing pause before a refill stands.</summary>
    private void CheckDemand()
    {
        if (Volatile.Read(ref _lostSpares) == 0)
        {
            _ = RefillAsync();
        }
    }

    private void OnSpareTaken()
    {
        Interlocked.Exchange(ref _lostSpares, 0);
        metrics.TurnStarted("warm");
        _ = RefillAsync();
    }

    private async Task<IClaudeCliRun> StartKeptAsync(Guid sessionId, ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var systemPrompt = invocation.SystemPrompt;
        var fingerprint = $"{invocation.CliModel}\n{string.Join(',', invocation.Tools ?? [])}\n{systemPrompt}";
        ResidentClaudeProcess? resident = null;
        lock (_gate)
        {
            if (_kept.Remove(sessionId, out var kept))
            {
                Release(kept);
                resident = kept.Process;
            }
        }

        if (resident is not null && !resident.Exited.IsCompleted)
        {
            if (resident.Fingerprint == fingerprint)
            {
                metrics.TurnStarted("kept");
                return resident.BeginTurn(invocation.InputLine, turn => OnTurnEnded(sessionId, turn));
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

        ResidentClaudeProcess process;
        if (invocation.SessionMode == ClaudeSessionMode.Create && FitsASpare(invocation)
            && TryTake(Spare.KeyOf(invocation.CliModel, forConversation: true), out var spare))
        {
            // The spare's own session and directory become the conversation's (the turn reports them to the store).
            process = spare.ClaimForConversation(fingerprint, systemPrompt);
            sessionId = process.Session.Id;
            OnSpareTaken();
        }
        else
        {
            metrics.TurnStarted("cold");
            process = new ResidentClaudeProcess(cold, invocation, fingerprint);
        }

        var keptAs = sessionId;
        _ = process.Exited.ContinueWith(_ => Forget(keptAs, process), TaskScheduler.Default);
        return process.BeginTurn(invocation.InputLine, turn => OnTurnEnded(keptAs, turn));
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

    public async Task EndSessionAsync(Guid sessionId)
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

        Task? closing;
        lock (_gate)
        {
            closing = _closing.GetValueOrDefault(sessionId);
        }

        if (closing is not null)
        {
            await closing;
        }
    }

    /// <summary>Spares run with no tools, so a turn with a tool allowlist needs a process started with it.</summary>
    private static bool FitsASpare(ClaudeCliInvocation invocation) => invocation.Tools is null or { Count: 0 };

    /// <summary>
    /// Starts the spares the configuration and recent demand ask for, replacing any that ended while they waited, and
    /// ends new-chat spares beyond what recent demand still calls for.
    /// </summary>
    public async Task RefillAsync()
    {
        // One refill at a time, each counting afresh: a spare taken during a refill is made up by the next one.
        await _refill.WaitAsync();
        try
        {
            if (_stopping)
            {
                return;
            }

            // Demand fades: look again now and then, so spares a past burst called for do not wait forever.
            var period = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, _demand.Window.Ticks / 4));
            _demandCheck ??= timeProvider.CreateTimer(_ => CheckDemand(), null, period, period);
            foreach (var model in catalog.Models)
            {
                var forChats = Math.Max(model.WarmSpares, Math.Min(_demand.Peak(model.CliModel), model.MaxWarmSpares));
                foreach (var (forConversation, wanted) in (ReadOnlySpan<(bool, int)>)[(false, forChats), (true, model.WarmConversationSpares)])
                {
                    var spares = _spares.GetOrAdd(Spare.KeyOf(model.CliModel, forConversation), static _ => new ConcurrentQueue<Spare>());
                    var missing = wanted - spares.Count(s => !s.Exited.IsCompleted);
                    if (missing < 0)
                    {
                        LogSparesRetired(logger, -missing, model.CliModel, wanted);
                    }

                    for (var surplus = -missing; surplus > 0 && spares.TryDequeue(out var spare); surplus--)
                    {
                        metrics.SpareReady(-1);
                        spare.Retire();
                    }

                    for (var i = 0; i < missing && !_stopping; i++)
                    {
                        var spare = forConversation
                            ? Spare.ForConversation(cold, model.CliModel, conversations.CreateWorkingDirectory())
                            : Spare.ForNewChat(cold, model.CliModel);
                        spares.Enqueue(spare);
                        metrics.SpareReady(1);
                        _ = spare.Exited.ContinueWith(exited => OnSpareEnded(spare, exited.Result), TaskScheduler.Default);
                    }
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
        _demandCheck?.Dispose();
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
        await cold.StopAllAsync();
    }

    private bool TryTake(string poolKey, out Spare spare)
    {
        spare = null!;
        if (!_spares.TryGetValue(poolKey, out var spares))
        {
            return false;
        }

        while (spares.TryDequeue(out var candidate))
        {
            metrics.SpareReady(-1);
            if (!candidate.Exited.IsCompleted)
            {
                spare = candidate;
                return true;
            }
        }

        return false;
    }

    private void OnSpareEnded(Spare spare, ClaudeCliExit exit)
    {
        spare.Cleanup(cli);
        if (spare.Claimed || spare.Retired || _stopping)
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Ending {Count} warm Claude CLI process(es) for --model {Model}: recent demand calls for {Wanted}")]
    private static partial void LogSparesRetired(ILogger logger, int count, string model, int wanted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not start warm Claude CLI processes")]
    private static partial void LogRefillFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ending the Claude CLI process of session {SessionId} ({Reason}) after {Turns} turns")]
    private static partial void LogRecycled(ILogger logger, Guid sessionId, string reason, int turns);

    private sealed record KeptProcess(ResidentClaudeProcess Process, ITimer IdleTimer, long KeptSince);

    /// <summary>
    /// A process started ahead of a turn, waiting on stdin. A new chat's spare serves one turn in a throw-away directory
    /// and stores nothing; a conversation's spare is a <see cref="ResidentClaudeProcess"/> with a session and a directory
    /// of its own, which the conversation that claims it keeps.
    /// </summary>
    private sealed class Spare
    {
        private readonly Channel<string>? _input;
        private readonly string _workingDirectory;
        private readonly ClaudeCliProcess? _process;
        private readonly ResidentClaudeProcess? _resident;

        private Spare(string cliModel, string workingDirectory, ClaudeCliProcess? process, ResidentClaudeProcess? resident, Channel<string>? input)
        {
            CliModel = cliModel;
            _workingDirectory = workingDirectory;
            _process = process;
            _resident = resident;
            _input = input;
        }

        public string CliModel { get; }

        public Task<ClaudeCliExit> Exited => _resident?.Exited ?? _process!.Exited;

        public bool Claimed { get; private set; }

        /// <summary>Whether the pool ended it because demand no longer calls for it.</summary>
        public bool Retired { get; private set; }

        public static string KeyOf(string cliModel, bool forConversation) => (forConversation ? "conversation:" : "chat:") + cliModel;

        public static Spare ForNewChat(CliWrapClaudeLauncher cold, string cliModel)
        {
            var workingDirectory = TemporaryPaths.CreateFolder("warm");
            var input = Channel.CreateUnbounded<string>();
            var invocation = new ClaudeCliInvocation(cliModel, InputLine: "", workingDirectory, ClaudeSessionMode.Ephemeral, SessionId: null, SystemPrompt: null);
            // Stdin closes once the turn's result is out, not right after the prompt: a loaded CLI that gets initialize,
            // a prompt and EOF at once sometimes exits 0 without answering (seen with 2.1.197, about 1 in 25).
            return new Spare(cliModel, workingDirectory, cold.Start(invocation, input.Reader, onResult: () => input.Writer.TryComplete()), resident: null, input);
        }

        public static Spare ForConversation(CliWrapClaudeLauncher cold, string cliModel, string workingDirectory)
        {
            var invocation = new ClaudeCliInvocation(cliModel, InputLine: "", workingDirectory, ClaudeSessionMode.Create, Guid.NewGuid(), SystemPrompt: null);
            return new Spare(cliModel, workingDirectory, process: null, new ResidentClaudeProcess(cold, invocation, fingerprint: null), input: null);
        }

        /// <summary>Gives a new chat's spare its one turn; stdin closes after its result, so the process ends with the turn.</summary>
        public ClaudeCliProcess ClaimForChat(string? systemPrompt, string inputLine)
        {
            Claimed = true;
            _input!.Writer.TryWrite(CliControlRequest.Initialize(systemPrompt));
            _input.Writer.TryWrite(inputLine);
            return _process!;
        }

        public ResidentClaudeProcess ClaimForConversation(string fingerprint, string? systemPrompt)
        {
            Claimed = true;
            _resident!.Claim(fingerprint, systemPrompt);
            return _resident;
        }

        /// <summary>Ends a spare no turn has claimed.</summary>
        public void Retire()
        {
            Retired = true;
            _ = _resident is not null ? _resident.KillAsync().AsTask() : _process!.DisposeAsync().AsTask();
        }

        /// <summary>Removes the spare's directory and what the CLI stored for it, unless a conversation took it (its session lives there).</summary>
        public void Cleanup(ClaudeCliEnvironment cli)
        {
            if (_resident is null || !Claimed)
            {
                cli.DeleteStateOf(_workingDirectory);
                TemporaryPaths.TryDelete(_workingDirectory);
            }
        }
    }
}
