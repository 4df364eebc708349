using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// One turn: the CLI run and everything it holds (the conversation's turn lock, its throw-away files), and its events,
/// each CLI line decoded once as it arrives. Disposing it ends the process if it still runs and frees the rest.
/// </summary>
internal sealed class ClaudeTurn : IClaudeTurnEvents, IPausedTurn
{
    /// <summary>
    /// The history a conversation's session is known by while a turn of it waits for function results, and after, should
    /// they never come: no client's.
    /// </summary>
    internal const string UnfinishedHistory = "unfinished";

    /// <summary>How long a CLI that has finished its turn may take to exit by itself (it needs about 30 ms).</summary>
    private static readonly TimeSpan ExitGrace = TimeSpan.FromSeconds(5);

    private readonly IClaudeCliRun _run;
    private readonly ConversationStore _conversations;
    private readonly string? _conversationId;
    private readonly ClaudeCliSession? _session;
    private readonly TurnFiles _files;
    private readonly TimeSpan _idleTimeout;
    private readonly ClaudeCliProbe _health;
    private readonly AnswerShape? _shape;
    // Events decoded while waiting for the answer to start, not yet read.
    private readonly List<ClaudeStreamEvent> _pending = [];
    // What a turn paused for the client's function results holds only while it runs: it gets them anew when it resumes.
    private ConversationTurn? _conversation;
    private IDisposable? _turnLease;
    private IDisposable _processLease;
    private ClaudeStreamDecoder _decoder;
    private int _lines;
    private bool _ended;
    private bool _paused;
    // Which request's part of the turn is current: a part read or disposed after the turn went on does nothing.
    private readonly Lock _partGate = new();
    private int _part;
    // The calls the turn paused on, answered when it resumes.
    private IReadOnlyList<PendingToolCall> _previousCalls = [];
    private bool _keptByLineage;
    private int _disposed;

    /// <param name="processLease">The turn's place under the process cap, freed when the process has ended.</param>
    /// <param name="turnLease">The conversation's turn lock, if the turn belongs to one.</param>
    /// <param name="conversation">For a kept conversation: what it has seen after the answer, and how its session is let go.</param>
    public ClaudeTurn(
        IClaudeCliRun run,
        ConversationStore conversations,
        string? conversationId,
        ConversationTurn? conversation,
        ClaudeCliSession? session,
        IDisposable processLease,
        IDisposable? turnLease,
        TurnFiles files,
        TimeSpan idleTimeout,
        ClaudeCliProbe health,
        AnswerShape? shape = null)
    {
        _run = run;
        _conversations = conversations;
        _conversationId = conversationId;
        _conversation = conversation;
        _session = session;
        _processLease = processLease;
        _turnLease = turnLease;
        _files = files;
        _idleTimeout = idleTimeout;
        _health = health;
        _shape = shape;
        _decoder = NewDecoder(default);
    }

    /// <summary>Calls of the client's functions that are answered at once, without the client (a rebuilt conversation's own results).</summary>
    public ToolReplay? Replay { get; set; }

    /// <summary>
    /// Called when the turn has paused for the client's function results, with the calls and the key of the history up
    /// to them; whoever it calls now owns the turn.
    /// </summary>
    public Action<ClaudeTurn, IReadOnlyList<ClaudeToolCall>, string>? OnPaused { get; init; }

    /// <summary>Whether the conversation started with this turn: nothing of it was kept here or in the shared store.</summary>
    public bool StartsConversation { get; init; }

    /// <summary>The calls the paused turn waits on.</summary>
    public IReadOnlyList<ClaudeToolCall> WaitingCalls => [.. _previousCalls.Select(p => p.Call)];

    /// <inheritdoc/>
    public long? PausedAt { get; set; }

    /// <summary>Whether the turn's process has ended: a paused turn can then not go on.</summary>
    public bool ProcessEnded => _run.Exited.IsCompleted;

    /// <summary>The session the turn runs in, if it keeps one.</summary>
    public ClaudeCliSession? Session => _session;

    /// <summary>
    /// Goes on with a paused turn: the client's results answer the calls the CLI waits on, in the same process, and the
    /// rest of the turn is read as a new request's answer.
    /// </summary>
    /// <param name="processLease">The turn's new place under the process cap.</param>
    /// <param name="conversation">What the conversation has seen once this request's answer is in.</param>
    /// <param name="turnLease">The conversation's turn lock, taken again for the rest of the turn.</param>
    public void Resume(IReadOnlyList<ClaudeToolResult> results, IDisposable processLease, IDisposable? turnLease, ConversationTurn? conversation)
    {
        var server = (_run as ResidentClaudeTurn)?.Process.ToolServer
            ?? throw new InvalidOperationException("Only a turn that serves the client's functions can pause.");
        lock (_partGate)
        {
            // The earlier response's part is over before the process goes on.
            _part++;
            (_processLease, _turnLease, _conversation, _paused, _ended, PausedAt) = (processLease, turnLease, conversation, false, false, null);
            _decoder = NewDecoder(_decoder.ReportedUsage);
            _pending.Clear();
        }

        foreach (var waiting in _previousCalls)
        {
            server.Answer(waiting, results.First(r => r.ToolCallId == waiting.Call.Id));
        }
    }

    /// <summary>
    /// This request's part of the turn, for its response: once the turn pauses and the client's next request resumes
    /// it, a late read or dispose by the earlier response (which YARP does after the last frame) leaves it alone.
    /// </summary>
    public IClaudeTurnEvents CurrentPart
    {
        get
        {
            lock (_partGate)
            {
                return new Part(this, _part);
            }
        }
    }

    /// <summary>Whether <paramref name="part"/> may still act on the turn: it is the current one, and the turn does not wait.</summary>
    private bool Owns(int part)
    {
        lock (_partGate)
        {
            return part == _part && !_paused;
        }
    }

    /// <summary>
    /// Reads for <paramref name="part"/>. A paused turn gives only what was decoded before it paused and never touches
    /// the process, which the client's next request may be resuming; a turn that does not wait is in no one else's hands.
    /// </summary>
    private ValueTask<bool> ReadAsync(int part, List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
    {
        lock (_partGate)
        {
            if (part != _part || _paused)
            {
                events.Clear();
                if (part != _part || _pending.Count == 0)
                {
                    return ValueTask.FromResult(false);
                }

                events.AddRange(_pending);
                _pending.Clear();
                return ValueTask.FromResult(true);
            }
        }

        return ReadAsync(events, cancellationToken);
    }

    /// <remarks>A paused turn is in the hands of whoever resumes or ends it: a part never disposes it.</remarks>
    private sealed class Part(ClaudeTurn turn, int part) : IClaudeTurnEvents
    {
        public ClaudeBackendError? FailedBeforeAnswer => null;

        public ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken) =>
            turn.ReadAsync(part, events, cancellationToken);

        public ValueTask DisposeAsync() => turn.Owns(part) ? turn.DisposeAsync() : ValueTask.CompletedTask;
    }

    private ClaudeStreamDecoder NewDecoder(ClaudeUsage reportedEarlier) => new(null, reportedEarlier)
    {
        CostReportedEarlier = (_run as ResidentClaudeTurn)?.Process.CostReported ?? 0,
        StopSequences = _shape?.StopSequences,
        Structured = _shape?.Structured,
        AnswersAtOnce = call => Replay?.TryAnswer(call, (_run as ResidentClaudeTurn)?.Process.ToolServer) == true,
        MayAnswerAtOnce = () => Replay?.HasAnswers == true,
    };

    /// <summary>
    /// Reads the CLI's output until the model starts answering or the turn ends, so that a failure before any answer
    /// (bad credentials, rate limits, a missing CLI) can still be reported with a real status code.
    /// </summary>
    /// <returns>Null when the answer has started; otherwise the error that ended the turn.</returns>
    /// <param name="stillWorking">Called for each line of a structured turn, whose answer is known only at its end: its wait
    /// is for silence, not for the first word.</param>
    public async Task<ClaudeBackendError?> WaitForAnswerAsync(CancellationToken cancellationToken, Action? stillWorking = null)
    {
        while (await _run.Output.WaitToReadAsync(cancellationToken))
        {
            while (_run.Output.TryRead(out var line))
            {
                if (_shape?.Structured is not null)
                {
                    stillWorking?.Invoke();
                }

                var first = _pending.Count;
                await DecodeAsync(line, _pending);
                for (var i = first; i < _pending.Count; i++)
                {
                    switch (_pending[i])
                    {
                        case TurnFailed failed:
                            return failed.Error;
                        case TurnCompleted or TextDelta or ToolCallRequested:
                            return null;
                        case ThinkingDelta when _shape?.Structured is null:
                            // A structured answer is known only at the end: until it is checked, a failure keeps its status.
                            return null;
                    }
                }
            }
        }

        return await ExitErrorAsync();
    }

    /// <summary>Whether the turn resumes a session written from the client's history (<see cref="ClaudeSessionFile"/>).</summary>
    public bool WroteHistory { get; init; }

    /// <summary>Null: a turn is handed out only once its answer has started (or it is complete).</summary>
    public ClaudeBackendError? FailedBeforeAnswer => null;

    /// <summary>
    /// Whether the process ended before answering without saying why although it did start: without a single line
    /// (killed from outside, or a warm spare that died just as it was claimed), or with exit code 0 and no result (a loaded
    /// CLI given its prompt and EOF at once, which warm spares now avoid). Nothing has reached the client, so the turn
    /// can simply be tried again.
    /// </summary>
    public async Task<bool> EndedSilentlyAsync()
    {
        if (_ended || !HasEnded)
        {
            return false;
        }

        var exit = await _run.Exited;
        return exit.StartFailure is null && (_lines == 0 || exit.ExitCode == 0);
    }

    /// <summary>
    /// Whether the CLI said it does not know the session to resume: its folder was cleared, or the CLI now runs with
    /// another config folder or login. It says so in its result line's <c>errors</c> (stream-json) and on stderr.
    /// </summary>
    public async Task<bool> LostSessionAsync(ClaudeBackendError error) =>
        IsLostSession(error.Message) || (HasEnded && IsLostSession((await _run.Exited).StandardError));

    private static bool IsLostSession(string text) => text.Contains("No conversation found with session ID", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether the process's output is over, so its exit can be awaited. After a first-answer timeout it still runs,
    /// and waiting for its exit would hang.
    /// </summary>
    private bool HasEnded => _run.Output.Completion.IsCompleted;

    public async ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
    {
        events.Clear();
        if (_pending.Count > 0)
        {
            events.AddRange(_pending);
            _pending.Clear();
            return true;
        }

        ClaudeBackendError? error = null;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        idle.CancelAfter(_idleTimeout);
        try
        {
            while (!_ended && events.Count == 0)
            {
                if (!await _run.Output.WaitToReadAsync(idle.Token))
                {
                    break;
                }

                while (!_ended && _run.Output.TryRead(out var line))
                {
                    await DecodeAsync(line, events);
                    idle.CancelAfter(_idleTimeout);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Silence past the idle timeout: end the process and tell the client, rather than hang.
            await _run.DisposeAsync();
            error = new ClaudeBackendError(ClaudeErrorKind.Timeout, $"The Claude CLI was silent for {_idleTimeout.TotalSeconds:0} s and was stopped.");
        }

        if (events.Count > 0 || (_ended && error is null))
        {
            return events.Count > 0;
        }

        // The process ended without a result line: it crashed, was killed or went silent.
        events.Add(new TurnFailed(error ?? await ExitErrorAsync()));
        _ended = true;
        return true;
    }

    /// <summary>
    /// A turn of a kept conversation is complete only once its run has ended: a process that ends after the turn
    /// finishes writing the session file after printing its result, and a next turn (or a restarted gateway) resumes
    /// from that file. So the client hears "done" after the exit (about 30 ms once stdin is closed), and the mapping is
    /// recorded then. A process kept up for the conversation ends its run at the result, and writes its file when it is
    /// ended later.
    /// </summary>
    /// <remarks>
    /// A conversation known by its history moves on to the key of the history with this answer in it: the same history
    /// sent again (a regenerated answer) is then a branch of its own and never sees this answer.
    /// </remarks>
    private async Task CompleteAsync(ClaudeTurnResult result)
    {
        _health.ReportTurn(null);
        if (_run is ResidentClaudeTurn { Process: var process } && _decoder.ReportedTotalCostUsd is { } total)
        {
            // The next turn on this process costs what its result reports beyond this.
            process.CostReported = total;
        }

        if (_conversationId is not null && _session is not null)
        {
            await WaitForExitAsync();
            var history = _conversation?.HistoryAfterAnswer(result);
            if (_conversation is not { KeyedByHistory: true } || history is null)
            {
                await _conversations.RememberAsync(_conversationId, _session, history, CancellationToken.None);
            }
            else
            {
                // Another session may have reached the same history first (the same answer twice): it stays, this one goes.
                _keptByLineage = await _conversations.TryAddAsync(history, _session, CancellationToken.None);
            }

            if (_conversation?.Completed is { } completed)
            {
                await completed(result, _session);
            }
        }
    }

    /// <summary>
    /// The model waits for the client's function results: the process stays as it is, the turn gives up its place under
    /// the process cap and its conversation's lock, and is handed over until the client's next request resumes it.
    /// </summary>
    private async Task PauseAsync(ClaudeTurnResult result)
    {
        if (OnPaused is null)
        {
            // Only a turn of a kept conversation serves the client's functions: this cannot happen.
            return;
        }

        if (_conversationId is not null && _session is not null && _conversation is { KeyedByHistory: false })
        {
            try
            {
                // Should the client not come back with the results, its session holds a question with calls nobody
                // answered: the conversation's next turn goes on from the client's history, or the shared store's,
                // where there is one, rather than from it.
                await _conversations.RememberAsync(_conversationId, _session, UnfinishedHistory, CancellationToken.None);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // The store could not be written: the turn ends as a failed one would, and nothing waits.
                return;
            }
        }

        // The rebuilt round is over once its calls reach the client: what the model asks from now on is new.
        Replay = null;
        _previousCalls = _decoder.PendingCalls;
        lock (_partGate)
        {
            _paused = true;
        }

        var (processLease, turnLease) = (_processLease, _turnLease);
        (_processLease, _turnLease) = (NoLease.Instance, null);
        // A client that sends only its last message is known by the calls' ids alone.
        OnPaused(this, result.ToolCalls ?? [], _conversation?.HistoryAfterAnswer(result) ?? "unknown:" + Guid.NewGuid());
        processLease.Dispose();
        turnLease?.Dispose();
    }

    private async Task WaitForExitAsync()
    {
        try
        {
            await _run.Exited.WaitAsync(ExitGrace);
        }
        catch (TimeoutException)
        {
            // It did not leave on its own; disposal ends it.
        }
    }

    /// <summary>Decodes one CLI line into <paramref name="events"/>; a completed turn is recorded before its outcome is read.</summary>
    private async ValueTask DecodeAsync(string line, List<ClaudeStreamEvent> events)
    {
        _lines++;
        var first = events.Count;
        _decoder.Decode(line, events);
        for (var i = first; i < events.Count; i++)
        {
            if (events[i] is TurnCompleted or TurnFailed)
            {
                _ended = true;
                if (events[i] is TurnFailed { Error.Kind: ClaudeErrorKind.InvalidOutput })
                {
                    // The CLI counts a turn whose answer failed the schema as a success: its process must not be kept
                    // with an exchange the client never got. One still at work (the output limit) is stopped now.
                    (_run as ResidentClaudeTurn)?.Spoil();
                    if (!HasEnded)
                    {
                        await _run.DisposeAsync();
                    }
                }

                if (events[i] is TurnCompleted completed)
                {
                    if (completed.Result.StopReason is ClaudeTurnResult.StopSequenceStopReason or ClaudeTurnResult.MaxTokensStopReason && !HasEnded)
                    {
                        // The answer ended (a stop sequence, the output limit) while the CLI still writes: a kept process
                        // is interrupted, and stays for the next turn with the answer counted; a process of the turn's
                        // own is ended.
                        if (_run is ResidentClaudeTurn cut)
                        {
                            cut.AnswerComplete();
                        }

                        await _run.DisposeAsync();
                    }

                    await (_decoder.IsPaused ? PauseAsync(completed.Result) : CompleteAsync(completed.Result));
                }
            }
        }
    }

    private async Task<ClaudeBackendError> ExitErrorAsync()
    {
        var exit = await _run.Exited;
        if (exit.StartFailure is { } failure)
        {
            return new ClaudeBackendError(
                ClaudeErrorKind.CliUnavailable,
                $"The Claude CLI could not be started ({failure.Message}). Install it (npm install -g @anthropic-ai/claude-code) or set CLAUDE_CLI to its path.");
        }

        var detail = exit.StandardError.Length > 0 ? $": {exit.StandardError}" : ".";
        return exit.ExitCode is null
            ? new ClaudeBackendError(ClaudeErrorKind.CliFailed, "The Claude CLI was stopped before it answered" + detail)
            : new ClaudeBackendError(ClaudeErrorKind.CliFailed, $"The Claude CLI exited with code {exit.ExitCode} before it answered{detail}");
    }

    /// <summary>Disposing a paused turn does nothing: its owner ends it (<see cref="EndPausedAsync"/>).</summary>
    public ValueTask DisposeAsync() => IsPaused ? ValueTask.CompletedTask : DisposeAsync(keepProcessLease: false);

    private bool IsPaused
    {
        get
        {
            lock (_partGate)
            {
                return _paused;
            }
        }
    }

    /// <summary>Ends a paused turn the client did not come back to: its process stops waiting and the rest is freed.</summary>
    public ValueTask EndPausedAsync()
    {
        lock (_partGate)
        {
            // The response that paused it may still read: it reads the turn as over.
            _part++;
            (_paused, _ended) = (false, false);
        }

        return DisposeAsync(keepProcessLease: false);
    }

    /// <param name="keepProcessLease">True when the caller starts another turn in this turn's place under the process cap.</param>
    public async ValueTask DisposeAsync(bool keepProcessLease)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (_ended)
            {
                // The turn is over: let the CLI finish its own work (session file, cleanup) before ending it.
                await WaitForExitAsync();
            }

            await _run.DisposeAsync();
            if (_conversation is { KeyedByHistory: true } && _session is not null && !_keptByLineage)
            {
                // No key leads to this session any more: failed, abandoned, or a twin of one that is kept.
                await _conversation.Discard(_session);
            }
        }
        finally
        {
            if (!keepProcessLease)
            {
                _processLease.Dispose();
            }

            _turnLease?.Dispose();
            _files.Delete();
        }
    }
}

/// <summary>A turn of a kept conversation, by id or by history (<see cref="ConversationLineage"/>).</summary>
/// <param name="HistoryAfterAnswer">What the session has seen once the answer is in it, or null when the client did not send it all.</param>
/// <param name="Discard">Lets go of a session no key leads to: its kept process, folder and files.</param>
/// <param name="KeyedByHistory">Whether the conversation's key is its history, which moves on with the answer.</param>
/// <param name="Completed">Called once the turn is complete and remembered, with its result: by the request that
/// completes it, which for a turn that paused for function results is the one that brought the last results.</param>
internal sealed record ConversationTurn(
    Func<ClaudeTurnResult, string?> HistoryAfterAnswer,
    Func<ClaudeCliSession, Task> Discard,
    bool KeyedByHistory,
    Func<ClaudeTurnResult, ClaudeCliSession, Task>? Completed = null);

/// <summary>What the backend does to the answer itself: end it at a stop sequence, check it against an output schema.</summary>
internal sealed record AnswerShape(IReadOnlyList<string>? StopSequences, StructuredAnswer? Structured);

/// <summary>A place under the process cap that holds nothing: a paused turn's.</summary>
internal sealed class NoLease : IDisposable
{
    public static NoLease Instance { get; } = new();

    public void Dispose()
    {
    }
}
