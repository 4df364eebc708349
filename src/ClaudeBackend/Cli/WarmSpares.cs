using System.Collections.Concurrent;
using System.Threading.Channels;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.ClaudeBackend.StreamJson;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// CLI processes started ahead of their turn and waiting on stdin, per model, so a new chat or a new kept conversation
/// skips the CLI's cold start (≈0.6 s, 0.75 CPU-seconds).
/// <list type="bullet">
/// <item>For new chats: <see cref="ClaudeModelOptions.WarmSpares"/>, raised by recent demand (the largest burst of new
/// chats within <see cref="ClaudeBackendOptions.SpareDemandWindow"/>) up to <see cref="ClaudeModelOptions.MaxWarmSpares"/>,
/// and lowered again as the demand fades. Its system prompt arrives in an <c>initialize</c> control request, its prompt
/// follows, and it ends after that one turn.</item>
/// <item>For new kept conversations: <see cref="ClaudeModelOptions.WarmConversationSpares"/>, each with a session id and
/// working directory of its own, which the conversation then keeps.</item>
/// </list>
/// A spare taken is replaced in the background; a spare that dies while it waits is replaced after a pause that grows
/// with every loss, so a missing or broken CLI cannot turn the pool into a spawn loop.
/// </summary>
internal sealed partial class WarmSpares(
    CliWrapClaudeLauncher launcher,
    ClaudeCliEnvironment cli,
    ClaudeModelCatalog catalog,
    ConversationStore conversations,
    ClaudeCliMetrics metrics,
    IOptions<ClaudeBackendOptions> options,
    TimeProvider timeProvider,
    ILogger<WarmSpares> logger)
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Spare>> _spares = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _refill = new(1, 1);
    private readonly SpareDemand _demand = new(timeProvider, options.Value.SpareDemandWindow);
    private ITimer? _demandCheck;
    private volatile bool _stopping;
    private int _lostSpares;

    /// <summary>
    /// Counts a new chat towards the demand, and gives it a waiting spare of its model if there is one (its system
    /// prompt and prompt sent); null when none was left.
    /// </summary>
    public ClaudeCliProcess? TryClaimForChat(ClaudeCliInvocation invocation)
    {
        _demand.Record(invocation.CliModel);
        if (TryTake(Spare.KeyOf(invocation.CliModel, forConversation: false), out var spare) && spare is ChatSpare chat)
        {
            var process = chat.Claim(invocation);
            OnSpareTaken();
            return process;
        }

        // None was left: the refill starts as many as the demand now calls for.
        RefillUnlessLosing();
        return null;
    }

    /// <summary>A waiting spare for a new kept conversation, with its system prompt sent; null when none is waiting.</summary>
    public ResidentClaudeProcess? TryClaimForConversation(ClaudeCliInvocation invocation)
    {
        if (!TryTake(Spare.KeyOf(invocation.CliModel, forConversation: true), out var spare) || spare is not ConversationSpare conversation)
        {
            return null;
        }

        var process = conversation.Claim(invocation);
        OnSpareTaken();
        return process;
    }

    /// <summary>The spares that wait now, unclaimed and running.</summary>
    public IReadOnlyList<Contract.ClaudeLoadedProcess> Loaded() =>
        [.. _spares.Values.SelectMany(queue => queue)
            .Where(spare => !spare.Claimed && !spare.Exited.IsCompleted)
            .Select(spare => new Contract.ClaudeLoadedProcess(spare.CliModel, spare.ResidentMemoryBytes(), null))];

    /// <summary>Starts no more spares (the gateway is stopping; the launcher ends the waiting ones with every other process).</summary>
    public void Stop()
    {
        _stopping = true;
        _demandCheck?.Dispose();
    }

    /// <summary>A refill, unless spares are being lost (a missing or broken CLI): then the growing pause before the next one stands.</summary>
    private void RefillUnlessLosing()
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
            _demandCheck ??= timeProvider.CreateTimer(_ => RefillUnlessLosing(), null, period, period);
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
                        Spare spare = forConversation
                            ? new ConversationSpare(launcher, model.CliModel, conversations.CreateWorkingDirectory())
                            : new ChatSpare(launcher, model.CliModel);
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
        _ = Task.Delay(pause, timeProvider).ContinueWith(_ => RefillAsync(), TaskScheduler.Default);
        LogSpareEnded(logger, spare.CliModel, exit.StartFailure?.Message ?? $"exit code {exit.ExitCode}", pause.TotalSeconds);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A warm Claude CLI process for --model {Model} ended while it waited ({Reason}); replacing it in {Seconds} s")]
    private static partial void LogSpareEnded(ILogger logger, string model, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Ending {Count} warm Claude CLI process(es) for --model {Model}: recent demand calls for {Wanted}")]
    private static partial void LogSparesRetired(ILogger logger, int count, string model, int wanted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not start warm Claude CLI processes")]
    private static partial void LogRefillFailed(ILogger logger, Exception exception);

    /// <summary>A process started ahead of a turn, waiting on stdin, in a working directory of its own.</summary>
    private abstract class Spare(string cliModel, string workingDirectory)
    {
        public string CliModel { get; } = cliModel;

        protected string WorkingDirectory { get; } = workingDirectory;

        public abstract Task<ClaudeCliExit> Exited { get; }

        public abstract long? ResidentMemoryBytes();

        public bool Claimed { get; protected set; }

        /// <summary>Whether the pool ended it because demand no longer calls for it.</summary>
        public bool Retired { get; private set; }

        public static string KeyOf(string cliModel, bool forConversation) => (forConversation ? "conversation:" : "chat:") + cliModel;

        /// <summary>Ends a spare no turn has claimed.</summary>
        public void Retire()
        {
            Retired = true;
            End();
        }

        /// <summary>Removes the spare's directory and what the CLI stored for it, once the process has ended.</summary>
        public virtual void Cleanup(ClaudeCliEnvironment cli) => cli.DeleteWorkingDirectory(WorkingDirectory);

        protected abstract void End();
    }

    /// <summary>A new chat's spare: it serves one turn in a throw-away directory, stores nothing, and ends with the turn.</summary>
    private sealed class ChatSpare : Spare
    {
        private readonly Channel<string> _input = Channel.CreateUnbounded<string>();
        private readonly ClaudeCliProcess _process;

        public ChatSpare(CliWrapClaudeLauncher launcher, string cliModel)
            : base(cliModel, TemporaryPaths.CreateFolder("warm"))
        {
            var invocation = new ClaudeCliInvocation(cliModel, InputLine: "", WorkingDirectory, ClaudeSessionMode.Ephemeral, SessionId: null, SystemPrompt: null);
            // Stdin closes once the turn's result is out, not right after the prompt: a loaded CLI that gets initialize,
            // a prompt and EOF at once sometimes exits 0 without answering (seen with 2.1.197, about 1 in 25).
            _process = launcher.Start(invocation, _input.Reader, onResult: () => _input.Writer.TryComplete());
        }

        public override Task<ClaudeCliExit> Exited => _process.Exited;

        public override long? ResidentMemoryBytes() => _process.ResidentMemoryBytes();

        /// <summary>Gives the spare its one turn; stdin closes after its result, so the process ends with the turn.</summary>
        public ClaudeCliProcess Claim(ClaudeCliInvocation invocation)
        {
            Claimed = true;
            _input.Writer.TryWrite(CliControlRequest.Initialize(invocation.SystemPrompt, invocation.OutputSchema));
            foreach (var line in invocation.TurnInput(default))
            {
                _input.Writer.TryWrite(line);
            }

            return _process;
        }

        protected override void End() => _ = _process.DisposeAsync().AsTask();
    }

    /// <summary>A new kept conversation's spare: a resident process with a session and a directory of its own, which the conversation keeps.</summary>
    private sealed class ConversationSpare(CliWrapClaudeLauncher launcher, string cliModel, string workingDirectory) : Spare(cliModel, workingDirectory)
    {
        private readonly ResidentClaudeProcess _process = new(
            launcher, new ClaudeCliInvocation(cliModel, InputLine: "", workingDirectory, ClaudeSessionMode.Create, Guid.NewGuid(), SystemPrompt: null), fingerprint: null);

        public override Task<ClaudeCliExit> Exited => _process.Exited;

        public override long? ResidentMemoryBytes() => _process.ResidentMemoryBytes();

        public ResidentClaudeProcess Claim(ClaudeCliInvocation invocation)
        {
            Claimed = true;
            _process.Claim(invocation);
            return _process;
        }

        /// <summary>A conversation that took it keeps its directory: its session lives there.</summary>
        public override void Cleanup(ClaudeCliEnvironment cli)
        {
            if (!Claimed)
            {
                base.Cleanup(cli);
            }
        }

        protected override void End() => _ = _process.KillAsync().AsTask();
    }
}
