using System.Collections.Concurrent;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.StreamJson;
using Microsoft.Extensions.Logging;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Keeps <see cref="ClaudeModelOptions.WarmSpares"/> processes per model started and waiting on stdin, so a new chat
/// gets its first token in tens of milliseconds instead of after the CLI's cold start. A spare is claimed by a
/// one-off turn in the default safe profile: its system prompt arrives in an <c>initialize</c> control request, its
/// prompt follows, stdin closes, and the process ends after that one turn, so no chat ever sees another's history.
/// Everything else (kept conversations, tool allowlists) starts cold. The pool refills in the background.
/// </summary>
internal sealed partial class WarmClaudeLauncher(
    CliWrapClaudeLauncher cold,
    ClaudeModelCatalog catalog,
    ClaudeCliMetrics metrics,
    ILogger<WarmClaudeLauncher> logger) : IClaudeCliLauncher
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Spare>> _spares = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _refill = new(1, 1);
    private volatile bool _stopping;
    private int _lostSpares;

    public async ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        if (invocation.SessionMode == ClaudeSessionMode.Ephemeral && invocation.Tools is null or { Count: 0 } && TryTake(invocation.CliModel, out var spare))
        {
            var systemPrompt = invocation.SystemPromptFile is { } file ? await File.ReadAllTextAsync(file, cancellationToken) : null;
            spare.Claim(systemPrompt, invocation.InputLine);
            Interlocked.Exchange(ref _lostSpares, 0);
            metrics.TurnStarted(warm: true);
            _ = RefillAsync();
            return spare.Run;
        }

        metrics.TurnStarted(warm: false);
        return await cold.StartAsync(invocation, cancellationToken);
    }

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
                var missing = model.WarmSpares - spares.Count(s => !s.Run.Exited.IsCompleted);
                for (var i = 0; i < missing && !_stopping; i++)
                {
                    var spare = Spare.Start(cold, model.CliModel);
                    spares.Enqueue(spare);
                    metrics.SpareReady(1);
                    _ = spare.Run.Exited.ContinueWith(exited => OnSpareEnded(spare, exited.Result), TaskScheduler.Default);
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

    public Task StopAllAsync()
    {
        _stopping = true;
        return cold.StopAllAsync();
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
            if (!candidate.Run.Exited.IsCompleted)
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

    private sealed class Spare
    {
        private readonly TaskCompletionSource<string> _input = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly string _workingDirectory;

        private Spare(CliWrapClaudeLauncher cold, string cliModel)
        {
            CliModel = cliModel;
            _workingDirectory = Directory.CreateTempSubdirectory("claudeproxy-warm-").FullName;
            var invocation = new ClaudeCliInvocation(cliModel, InputLine: "", _workingDirectory, ClaudeSessionMode.Ephemeral, SessionId: null, SystemPromptFile: null);
            Run = cold.StartIdle(invocation, _input.Task);
        }

        public string CliModel { get; }

        public IClaudeCliRun Run { get; }

        public bool Claimed { get; private set; }

        public static Spare Start(CliWrapClaudeLauncher cold, string cliModel) => new(cold, cliModel);

        public void Claim(string? systemPrompt, string inputLine)
        {
            Claimed = true;
            var initialize = JsonSerializer.Serialize(
                new CliControlRequest("initialize", new CliInitialize(systemPrompt)),
                ClaudeBackendJsonContext.Default.CliControlRequest);
            _input.TrySetResult(initialize + "\n" + inputLine);
        }

        public void Cleanup() => TemporaryPaths.TryDelete(_workingDirectory);
    }
}
