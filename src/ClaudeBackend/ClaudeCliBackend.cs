using System.Text.Json;
using System.Threading.RateLimiting;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The default <see cref="IClaudeBackend"/>: runs each turn in a Claude CLI process (a warm one when there is one),
/// under the process cap and its bounded queue, keeps conversations in their Claude session (by the client's id, or by
/// their history: <see cref="ConversationLineage"/>), and tries a turn once more when its session is gone or its
/// process ended without a word.
/// </summary>
public sealed partial class ClaudeCliBackend(
    IClaudeCliLauncher launcher,
    ClaudeModelCatalog catalog,
    ConversationStore conversations,
    ClaudeCliProbe health,
    ClaudeCliEnvironment cli,
    ClaudeCliMetrics metrics,
    TimeProvider timeProvider,
    IOptions<ClaudeBackendOptions> options,
    ILogger<ClaudeCliBackend> logger,
    ISharedConversationHistory? sharedHistory = null) : IClaudeBackend
{
    /// <summary>Ollama's own words for a full queue, which its clients already know how to handle.</summary>
    private const string BusyMessage = "server busy, please try again.  maximum pending requests exceeded";

    private readonly PausedTurns<ClaudeTurn> _paused = new(timeProvider, options, logger);

    private readonly ConcurrencyLimiter _processes = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = options.Value.MaxConcurrentProcesses,
        QueueLimit = options.Value.MaxQueuedTurns,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    public async Task<IClaudeTurnEvents> StartTurnAsync(ClaudeTurnRequest request, CancellationToken cancellationToken)
    {
        if (ProblemOf(request) is { } problem)
        {
            return ClaudeTurnEvents.Failed(new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, problem));
        }

        if (!catalog.TryFind(request.Model, out var model))
        {
            return ClaudeTurnEvents.Failed(new ClaudeBackendError(ClaudeErrorKind.ModelNotFound, $"model '{request.Model}' not found"));
        }

        // A request that brings the results of the client's functions goes on in the turn that waits for them, or, if
        // that is gone, in the conversation rebuilt up to the question, whose calls then get these results again.
        var replay = ToolReplay.Of(request.Messages);
        var resultKeys = replay is null ? null : ConversationKeysOf(request, model)!;
        var (paused, results, incomplete) = resultKeys is null ? (null, [], null) : await TakePausedAsync(request, replay!.Value.Asked, resultKeys);
        if (incomplete is not null)
        {
            return ClaudeTurnEvents.Failed(incomplete);
        }

        RateLimitLease? processLease;
        try
        {
            processLease = await AcquireProcessAsync(cancellationToken);
        }
        catch when (paused is not null)
        {
            // The client left while queued: the turn it came to resume ends with it.
            await paused.EndPausedAsync();
            throw;
        }

        if (processLease is null)
        {
            if (paused is not null)
            {
                // It waits on: the client's retry goes on in it rather than in a rebuilt conversation.
                PutBack(paused, request, resultKeys!);
            }

            return ClaudeTurnEvents.Failed(new ClaudeBackendError(ClaudeErrorKind.Busy, BusyMessage, RetryAfterSeconds: 5));
        }

        if (paused is not null)
        {
            return await ResumeAsync(paused, request, replay!.Value.Asked, resultKeys!, results, processLease, cancellationToken);
        }

        if (replay is not null)
        {
            LogToolTurnRebuilt(logger, results.Count);
        }

        var clientMessages = request.Messages;
        request = replay is null ? request : request with { Messages = replay.Value.Asked };
        var keys = ConversationKeysOf(request, model);
        var conversationKey = keys?.Key;
        var conversationName = request.ConversationId ?? "without an id";
        ClaudeTurn? turn = null;
        ClaudeBackendError? error;
        try
        {
            var writeHistory = true;
            turn = await StartTurnAsync(request, clientMessages, replay?.Replay, keys, model, processLease, writeHistory, cancellationToken);
            error = await WaitForAnswerAsync(turn, cancellationToken);
            // Each cause is worth one more try, and both can happen in a row: a kept process that died while it waited
            // ends silently, and the process that resumes in its place may not find the session it had not yet saved.
            var retriedLostSession = false;
            var retriedSilentEnd = false;
            while (error is not null)
            {
                if (turn.WroteHistory && writeHistory && await turn.LostSessionAsync(error))
                {
                    // The CLI did not find the session written for it (it named the folder otherwise, e.g. behind a
                    // symbolic link): the history goes as a transcript instead.
                    writeHistory = false;
                    LogWrittenSessionNotFound(logger, conversationName);
                }
                else if (!retriedLostSession && conversationKey is not null && await turn.LostSessionAsync(error))
                {
                    // The stored session is gone (~/.claude cleared, another config folder or login): start a new one
                    // from the history the client sent, or afresh when it sent none.
                    retriedLostSession = true;
                    var history = TurnPrompt.HistoryCount(request.Messages);
                    if (history > 0)
                    {
                        LogSessionRebuilt(logger, conversationName, history);
                    }
                    else
                    {
                        LogSessionLostWithoutHistory(logger, conversationName);
                    }

                    await conversations.ForgetAsync(conversationKey, cancellationToken);
                }
                else if (!retriedSilentEnd && await turn.EndedSilentlyAsync())
                {
                    retriedSilentEnd = true;
                    LogProcessEndedSilently(logger);
                }
                else
                {
                    break;
                }

                await turn.DisposeAsync(keepProcessLease: true);
                // The lease now belongs to no turn: should the restart fail, the catch below must free it.
                turn = null;
                turn = await StartTurnAsync(request, clientMessages, replay?.Replay, keys, model, processLease, writeHistory, cancellationToken);
                error = await WaitForAnswerAsync(turn, cancellationToken);
            }
        }
        catch
        {
            if (turn is null)
            {
                processLease.Dispose();
            }
            else
            {
                await turn.DisposeAsync();
            }

            throw;
        }

        if (error is not null)
        {
            await turn.DisposeAsync();
            health.ReportTurn(error);
            LogTurnFailed(logger, error.Kind, error.Message);
            return ClaudeTurnEvents.Failed(error);
        }

        return turn.CurrentPart;
    }

    /// <summary>
    /// The turn that waits for the results a request brings, if it can go on with them, and the results paired with its
    /// calls. A turn whose process died, or that was started with another model, system prompt or functions, or one found
    /// in the conversation's session that waits on other calls, is ended (before the rebuild touches its session); one
    /// that did not get all its results waits on, and the request fails.
    /// </summary>
    /// <param name="asked">The request's messages up to the question that led to the calls (<see cref="ToolReplay.Of"/>).</param>
    private async Task<(ClaudeTurn? Paused, IReadOnlyList<ClaudeToolResult> Results, ClaudeBackendError? Incomplete)> TakePausedAsync(
        ClaudeTurnRequest request, IReadOnlyList<ClaudeMessage> asked, ConversationKeys keys)
    {
        var results = request.Messages[^1].ToolResults ?? [];
        var paused = _paused.Take(request.Owner, results.Select(r => r.ToolCallId), CallsHistoryKeyOf(request, keys), null, out var scope);
        var bySession = false;
        if (paused is null && !keys.ByHistory && TurnPrompt.HistoryCount(asked) == 0
            && await conversations.FindAsync(keys.Key, CancellationToken.None) is { } session)
        {
            // A client that drops the ids and sends only its new messages is known by neither: a conversation with an
            // id waits in its session.
            paused = _paused.Take(request.Owner, [], "", session.Id, out scope);
            bySession = true;
        }

        if (paused is null)
        {
            return (null, results, null);
        }

        if (paused.ProcessEnded || scope != keys.Scope || (bySession && !AreTheCallsOf(paused, request.Messages)))
        {
            // Not a round it can go on with (in the session: another round's calls): the question is asked again, in a
            // conversation that would end this turn anyway.
            await paused.EndPausedAsync();
            return (null, results, null);
        }

        var (matched, missing) = MatchResults(paused.WaitingCalls, request.Messages);
        if (missing.Count == 0)
        {
            return (paused, matched, null);
        }

        PutBack(paused, request, keys);
        return (null, results, new ClaudeBackendError(ClaudeErrorKind.InvalidRequest,
            $"the results of all calls of a round must come together; missing: {string.Join(", ", missing)}"));
    }

    /// <summary>Whether the calls the request sends back are the ones the paused turn waits on: the same functions, with the same arguments.</summary>
    private static bool AreTheCallsOf(ClaudeTurn paused, IReadOnlyList<ClaudeMessage> messages)
    {
        var echoed = messages.LastOrDefault(m => m.ToolCalls is { Count: > 0 })?.ToolCalls ?? [];
        var waiting = paused.WaitingCalls;
        return echoed.Count == waiting.Count && echoed.Zip(waiting).All(pair => pair.First.Name == pair.Second.Name
            && ConversationLineage.CanonicalJson(pair.First.Arguments) == ConversationLineage.CanonicalJson(pair.Second.Arguments));
    }

    /// <summary>Lets a paused turn taken for a request wait on, for the rest of its time.</summary>
    private void PutBack(ClaudeTurn paused, ClaudeTurnRequest request, ConversationKeys keys) =>
        _paused.Add(paused, request.Owner, keys.Scope, paused.WaitingCalls, CallsHistoryKeyOf(request, keys));

    /// <summary>The key of a request's history up to the calls its results answer.</summary>
    private static string CallsHistoryKeyOf(ClaudeTurnRequest request, ConversationKeys keys) =>
        keys.HistoryKeyOf(request.Messages.Take(TurnPrompt.HistoryCount(request.Messages)));

    /// <summary>
    /// Pairs the calls a paused turn waits on with the client's results: by id, or, for a client that drops the ids, by
    /// place among the calls of the assistant message it sent back.
    /// </summary>
    private static (IReadOnlyList<ClaudeToolResult> Matched, List<string> Missing) MatchResults(IReadOnlyList<ClaudeToolCall> waiting, IReadOnlyList<ClaudeMessage> messages)
    {
        var results = messages[^1].ToolResults ?? [];
        var echoed = messages.LastOrDefault(m => m.ToolCalls is { Count: > 0 })?.ToolCalls ?? [];
        List<ClaudeToolResult> matched = [];
        List<string> missing = [];
        for (var i = 0; i < waiting.Count; i++)
        {
            var call = waiting[i];
            var result = results.FirstOrDefault(r => r.ToolCallId == call.Id)
                ?? (i < echoed.Count && echoed[i].Name == call.Name ? results.FirstOrDefault(r => r.ToolCallId == echoed[i].Id) : null);
            if (result is null)
            {
                missing.Add(call.Id);
            }
            else
            {
                matched.Add(result with { ToolCallId = call.Id });
            }
        }

        return (WithWordsBeside(matched, messages[^1]), missing);
    }

    /// <summary>
    /// Results with what the client said beside them (Claude Code sends reminders and prompts typed while a tool ran in
    /// the same message): the CLI takes only results while a call waits, so the words go with the last one.
    /// </summary>
    internal static IReadOnlyList<ClaudeToolResult> WithWordsBeside(IReadOnlyList<ClaudeToolResult> results, ClaudeMessage message) =>
        message.Text.Length == 0 || results.Count == 0
            ? results
            : [.. results.SkipLast(1), results[^1] with { Content = $"{results[^1].Content}\n\n{message.Text}" }];

    /// <summary>Goes on with a turn paused for the client's function results, in its own process.</summary>
    /// <param name="asked">The request's messages up to the question that led to the calls.</param>
    private async Task<IClaudeTurnEvents> ResumeAsync(
        ClaudeTurn turn, ClaudeTurnRequest request, IReadOnlyList<ClaudeMessage> asked, ConversationKeys keys, IReadOnlyList<ClaudeToolResult> results, IDisposable processLease, CancellationToken cancellationToken)
    {
        List<IDisposable> leases = [];
        var resumed = false;
        ClaudeBackendError? error;
        try
        {
            // The conversation's turn lock again, as for any turn: another request of the same conversation waits.
            leases.Add(await conversations.EnterTurnAsync(keys.Key, cancellationToken));
            if (turn.Session is { } session)
            {
                leases.Add(await conversations.EnterTurnAsync("session:" + session.Id, cancellationToken));
            }

            // The request holds the whole history when there is one before its question, or when none was before it.
            var wholeHistory = TurnPrompt.HistoryCount(asked) > 0 || turn.StartsConversation;
            turn.Resume(results, processLease, new Leases(leases), ConversationTurnOf(request.Messages, keys, historyKnown: true, wholeHistory));
            resumed = true;
            error = await WaitForAnswerAsync(turn, cancellationToken);
        }
        catch
        {
            if (!resumed)
            {
                // The client left while it waited for the conversation's lock: the turn it came to resume ends with it.
                new Leases(leases).Dispose();
                processLease.Dispose();
                await turn.EndPausedAsync();
            }
            else
            {
                await turn.DisposeAsync();
            }

            throw;
        }

        if (error is null)
        {
            return turn.CurrentPart;
        }

        await turn.DisposeAsync();
        health.ReportTurn(error);
        LogTurnFailed(logger, error.Kind, error.Message);
        return ClaudeTurnEvents.Failed(error);
    }

    /// <param name="messages">The conversation as the request has it, with any rounds of the client's functions it brought.</param>
    /// <param name="historyKnown">Whether the session will have seen exactly these messages and the answer.</param>
    /// <param name="wholeHistory">Whether the messages start at the conversation's beginning.</param>
    private ConversationTurn ConversationTurnOf(IReadOnlyList<ClaudeMessage> messages, ConversationKeys keys, bool historyKnown, bool wholeHistory) => new(
        result => historyKnown ? keys.HistoryKeyOf([.. messages, AnswerOf(result)]) : null,
        DiscardAsync,
        keys.ByHistory,
        keys.ByHistory || sharedHistory is null ? null : SharedHistorySaver(keys.Key, messages, wholeHistory));

    private static ClaudeMessage AnswerOf(ClaudeTurnResult result) => new(ClaudeMessage.AssistantRole, result.Text, ToolCalls: result.ToolCalls);

    /// <summary>
    /// Where the turn's session is stored: under the client's id, or, for a request without one that brings a history,
    /// under that history (<see cref="ConversationLineage"/>), moving on after the answer to the history that includes
    /// it. A first message without an id keeps no session.
    /// </summary>
    private ConversationKeys? ConversationKeysOf(ClaudeTurnRequest request, ClaudeModelOptions model)
    {
        var scope = ConversationLineage.ScopeOf(model.CliModel, SystemPromptOf(request), request.AllowedTools, request.ClientChatId, request.Tools);
        string HistoryKeyOf(IEnumerable<ClaudeMessage> messages) => ConversationLineage.KeyOf(request.Owner, scope, messages);
        if (request.ConversationId is { } id)
        {
            return new ConversationKeys(ConversationStore.KeyOf(request.Owner, id), HistoryKeyOf, ByHistory: false, scope);
        }

        var history = TurnPrompt.HistoryCount(request.Messages);
        if (history == 0)
        {
            // A first message keeps no session, unless the model may call the client's functions: the process must then
            // wait for their results, and it is kept, as a conversation known by its history, from its first answer on.
            return request.Tools is { Count: > 0 } ? new ConversationKeys("new:" + Guid.NewGuid(), HistoryKeyOf, ByHistory: true, scope) : null;
        }

        return new ConversationKeys(HistoryKeyOf(request.Messages.Take(history)), HistoryKeyOf, ByHistory: true, scope);
    }

    /// <param name="Key">The store's key of the conversation.</param>
    /// <param name="HistoryKeyOf">What names a history in the conversation's scope.</param>
    /// <param name="ByHistory">Whether the key is the history's own (a conversation without an id).</param>
    /// <param name="Scope">What must be the same for two requests to be one conversation (<see cref="ConversationLineage.ScopeOf"/>).</param>
    private sealed record ConversationKeys(string Key, Func<IEnumerable<ClaudeMessage>, string> HistoryKeyOf, bool ByHistory, string Scope);

    private string? SystemPromptOf(ClaudeTurnRequest request) =>
        (request.SystemPrompt ?? options.Value.DefaultSystemPrompt) is { Length: > 0 } prompt ? prompt : null;

    /// <summary>What makes a turn request one the CLI cannot run, or null.</summary>
    private static string? ProblemOf(ClaudeTurnRequest request) => request switch
    {
        { Model: null or "" } => "model is required",
        { Messages: null or { Count: 0 } } => "messages must not be empty",
        _ when request.Messages.Any(m => m.Role is not (ClaudeMessage.UserRole or ClaudeMessage.AssistantRole)) =>
            "message roles must be 'user' or 'assistant'",
        _ when request.Messages[^1].Role != ClaudeMessage.UserRole => "the last message must be a user message",
        _ => OptionsProblemOf(request.Options) ?? ToolProblemOf(request),
    };

    /// <summary>What makes the answer's options ones the CLI cannot honour, or null.</summary>
    private static string? OptionsProblemOf(ClaudeTurnOptions? options) => options switch
    {
        null => null,
        { Effort: { } effort } when !ClaudeTurnOptions.Efforts.Contains(effort) =>
            $"effort '{effort}' is not one of {string.Join(", ", ClaudeTurnOptions.Efforts)}",
        { MaxOutputTokens: <= 0 } => "the output token limit must be a positive number",
        { StopSequences: { } stops } when stops.Any(string.IsNullOrEmpty) => "a stop sequence must not be empty",
        { KeepAlive: { } keepAlive } when keepAlive < TimeSpan.Zero => "keep_alive must not be negative",
        { OutputSchema: { } schema } when StructuredAnswer.TryCreate(schema, out var problem) is null => problem,
        _ => null,
    };

    /// <summary>What makes the client's functions, or its results for them, unusable, or null.</summary>
    private static string? ToolProblemOf(ClaudeTurnRequest request)
    {
        var tools = request.Tools ?? [];
        foreach (var tool in tools)
        {
            if (!ToolName().IsMatch(tool.Name))
            {
                return $"tool '{tool.Name}': a function name must be 1 to {ClientToolServer.MaxToolNameLength} letters, digits, '_' or '-'";
            }

            if (tool.Parameters.ValueKind != JsonValueKind.Object
                || (tool.Parameters.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() != "object"))
            {
                return $"tool '{tool.Name}': parameters must be a JSON schema of type 'object'";
            }
        }

        if (tools.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            return $"tool '{twice.Key}' is defined twice";
        }

        var newTurn = request.Messages.Skip(TurnPrompt.HistoryCount(request.Messages)).ToList();
        if (newTurn.SkipLast(1).Any(m => m.ToolResults is { Count: > 0 }))
        {
            return "tool results must be the last message: send a new question in a request of its own";
        }

        if (request.Messages[^1].ToolResults is not { Count: > 0 } results)
        {
            return null;
        }

        var calls = request.Messages.SelectMany(m => m.ToolCalls ?? []).Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        if (results.FirstOrDefault(r => !calls.Contains(r.ToolCallId)) is { } unknown)
        {
            return $"tool result for an unknown call '{unknown.ToolCallId}': send the assistant message with its tool calls before the results";
        }

        return tools.Count == 0 ? "tool results need the tools they answer: send the same tools again" : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[a-zA-Z0-9_-]{1,51}$")]
    private static partial System.Text.RegularExpressions.Regex ToolName();

    /// <summary>
    /// A place under the process cap, waiting in the bounded queue if need be. Null when the queue is full or the wait
    /// timed out; a client that leaves while queued is dropped from the queue (the acquire is cancelled).
    /// </summary>
    private async Task<RateLimitLease?> AcquireProcessAsync(CancellationToken cancellationToken)
    {
        var waitStarted = timeProvider.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.QueueTimeout);
        metrics.Queued(1);
        try
        {
            var lease = await _processes.AcquireAsync(1, timeout.Token);
            if (lease.IsAcquired)
            {
                metrics.QueueWait(timeProvider.GetElapsedTime(waitStarted));
                return lease;
            }

            lease.Dispose();
            metrics.Rejected("queue_full");
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            metrics.Rejected("queue_timeout");
            return null;
        }
        finally
        {
            metrics.Queued(-1);
        }
    }

    /// <summary>Waits for the answer to start, within <see cref="ClaudeBackendOptions.FirstAnswerTimeout"/>.</summary>
    private async Task<ClaudeBackendError?> WaitForAnswerAsync(ClaudeTurn turn, CancellationToken cancellationToken)
    {
        var limit = options.Value.FirstAnswerTimeout;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        try
        {
            return await turn.WaitForAnswerAsync(timeout.Token, stillWorking: () => timeout.CancelAfter(limit));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ClaudeBackendError(ClaudeErrorKind.Timeout, $"The Claude CLI did not start answering within {limit.TotalSeconds:0} s.");
        }
    }

    /// <param name="clientMessages">The messages as the client sent them: more than the request's when a round is replayed.</param>
    /// <param name="replay">Results the client sent for calls a gone process made, given again as the model makes them again.</param>
    /// <param name="writeHistory">Whether a history no session holds is written as a session (else it goes as a transcript).</param>
    private async Task<ClaudeTurn> StartTurnAsync(
        ClaudeTurnRequest request,
        IReadOnlyList<ClaudeMessage> clientMessages,
        ToolReplay? replay,
        ConversationKeys? keys,
        ClaudeModelOptions model,
        IDisposable processLease,
        bool writeHistory,
        CancellationToken cancellationToken)
    {
        var files = new TurnFiles(cli);
        List<IDisposable> leases = [];
        try
        {
            string workingDirectory;
            Guid? sessionId = null;
            var mode = ClaudeSessionMode.Ephemeral;
            var wroteHistory = false;
            // Whether the session will have seen exactly the request's messages and the answer.
            var historyKnown = true;
            // Whether the conversation starts with this turn: no session of it is kept here, nor its history in the shared store.
            var startsHere = false;
            var history = TurnPrompt.HistoryCount(request.Messages);
            if (keys is not null)
            {
                leases.Add(await conversations.EnterTurnAsync(keys.Key, cancellationToken));
                var stored = await conversations.FindAsync(keys.Key, cancellationToken);
                if (stored is { } seen && !keys.ByHistory && history > 0
                    && await conversations.HistoryOfAsync(keys.Key, cancellationToken) is { } seenHistory
                    && seenHistory != keys.HistoryKeyOf(request.Messages.Take(history)))
                {
                    // The client's history is not the session's (a regenerated answer, an edited message): the model
                    // must see the client's, so the conversation goes on in a session written from it.
                    LogConversationBranched(logger, request.ConversationId!);
                    await DiscardAsync(seen);
                    await conversations.ForgetAsync(keys.Key, cancellationToken);
                    stored = null;
                }

                if (stored is { } seenHere && !keys.ByHistory && history == 0 && sharedHistory is not null
                    && await sharedHistory.SessionOfAsync(keys.Key, cancellationToken) is { } last && last != seenHere.Id)
                {
                    // The conversation went on at another worker while this one was gone: its session here missed turns.
                    LogSessionBehindSharedStore(logger, request.ConversationId!);
                    await DiscardAsync(seenHere);
                    await conversations.ForgetAsync(keys.Key, cancellationToken);
                    stored = null;
                }

                // What the shared store keeps of the conversation, once read for this turn.
                IReadOnlyList<ClaudeMessage>? kept = null;
                if (stored is { } unanswered && replay is not null && !keys.ByHistory && history == 0 && sharedHistory is not null
                    && await conversations.HistoryOfAsync(keys.Key, cancellationToken) == ClaudeTurn.UnfinishedHistory
                    && !sharedHistory.MissedATurn(keys.Key)
                    && await sharedHistory.SessionOfAsync(keys.Key, cancellationToken) == unanswered.Id
                    && (kept = await sharedHistory.LoadAsync(keys.Key, cancellationToken)) is { Count: > 0 })
                {
                    // Its session ends in the question and the calls whose process is gone, which the CLI would show the
                    // model as refused, before the question asked again; the shared store has what came before it, up to
                    // this session's last answer, every turn of it. (Without it, the session is resumed so, rather than
                    // lose what it holds.)
                    LogUnansweredSessionLetGo(logger, request.ConversationId!);
                    await DiscardAsync(unanswered);
                    await conversations.ForgetAsync(keys.Key, cancellationToken);
                    stored = null;
                }

                startsHere = stored is null;
                if (stored is { } known)
                {
                    // A turn still paused in that session for function results the client did not send: it moved on.
                    await _paused.EndSessionAsync(known.Id);
                    // One process per session: a history's key moves on with the answer, before this turn lets go of
                    // the session, so the next turn can find it under another key while this one still runs.
                    leases.Add(await conversations.EnterTurnAsync("session:" + known.Id, cancellationToken));
                    (mode, sessionId, workingDirectory) = (ClaudeSessionMode.Resume, known.Id, known.WorkingDirectory);
                    // A client that sends only its last message leaves the session's history to the session.
                    historyKnown = history > 0;
                    if (keys.ByHistory)
                    {
                        // The history is taken: should the turn not complete, its session (which may hold the
                        // unanswered question) is let go, and the same history sent again starts a session of its own.
                        await conversations.ForgetAsync(keys.Key, cancellationToken);
                    }
                }
                else
                {
                    if (!keys.ByHistory && history == 0 && sharedHistory is not null
                        && (kept ?? await sharedHistory.LoadAsync(keys.Key, cancellationToken)) is { Count: > 0 } shared)
                    {
                        // A conversation this worker has no session of, whose history another worker kept in the shared
                        // store (it is gone, or left): it goes on from there, as the real messages it was.
                        request = request with { Messages = [.. shared, .. request.Messages] };
                        clientMessages = [.. shared, .. clientMessages];
                        startsHere = false;
                        (history, historyKnown) = (TurnPrompt.HistoryCount(request.Messages), false);
                        LogSessionRebuiltFromSharedStore(logger, request.ConversationId!, shared.Count);
                    }

                    // A new conversation may get a warm process that brings a session and directory of its own instead.
                    (mode, sessionId, workingDirectory) = (ClaudeSessionMode.Create, Guid.NewGuid(),
                        keys.ByHistory ? conversations.CreateWorkingDirectory() : conversations.WorkingDirectoryOf(keys.Key));
                    if (history > 0 && writeHistory
                        && ClaudeSessionFile.TryWrite(cli, new ClaudeCliSession(sessionId.Value, workingDirectory), [.. request.Messages.Take(history)], timeProvider.GetUtcNow()))
                    {
                        // The history no session holds becomes one, as the real messages it was.
                        (mode, wroteHistory) = (ClaudeSessionMode.Resume, true);
                    }
                }
            }
            else
            {
                workingDirectory = files.CreateWorkingDirectory();
            }

            // A resumed session already holds the history; only the new turn is sent.
            var inputLine = TurnPrompt.ToInputLine(request.Messages, includeHistory: mode != ClaudeSessionMode.Resume);
            var invocation = new ClaudeCliInvocation(
                model.CliModel, inputLine, workingDirectory, mode, sessionId, SystemPromptOf(request), request.AllowedTools, request.Tools,
                ClaudeCliSettings.Of(request.Options), request.Options?.OutputSchema, request.Options?.KeepAlive);
            var run = await launcher.StartAsync(invocation, cancellationToken);
            var session = sessionId is { } id ? run.Session ?? new ClaudeCliSession(id, workingDirectory) : null;
            var conversation = keys is null ? null : ConversationTurnOf(clientMessages, keys, historyKnown, wholeHistory: history > 0 || startsHere);
            var shape = new AnswerShape(
                request.Options?.StopSequences,
                request.Options?.OutputSchema is { } schema ? StructuredAnswer.TryCreate(schema, out _) : null);
            return new ClaudeTurn(run, conversations, keys?.Key, conversation, session, processLease, new Leases(leases), files, options.Value.IdleTimeout, health, shape)
            {
                WroteHistory = wroteHistory,
                Replay = replay,
                // Found again by its calls' ids, or by the history up to the calls for a client that drops the ids.
                OnPaused = keys is null ? null : (paused, calls, historyKey) => _paused.Add(paused, request.Owner, keys.Scope, calls, historyKey),
                StartsConversation = startsHere,
            };
        }
        catch
        {
            new Leases(leases).Dispose();
            files.Delete();
            throw;
        }
    }

    /// <summary>
    /// What a finished turn of a conversation with an id adds to the shared store: the messages its completing request
    /// sent (its question, and the rounds of the client's functions that request brought) and the answer, after what is
    /// kept; or, when they are the whole history, all of it in place of what was kept.
    /// </summary>
    /// <remarks>
    /// Kept only when the turn completes, so a round the client never answers is never kept. The rounds are kept as the
    /// client sent them, which, when a process that was gone asked the question again, may differ from what the model
    /// last saw (it answered without calling again): the client's history is the conversation's. Rounds that the API
    /// would refuse (a call without its result, a result without its call) are not kept, and neither is what was kept
    /// before them: another worker would fail on them.
    /// </remarks>
    private Func<ClaudeTurnResult, ClaudeCliSession, Task> SharedHistorySaver(string key, IReadOnlyList<ClaudeMessage> sent, bool wholeHistory) =>
        (result, session) => sharedHistory!.SaveAsync(
            key,
            WithRoundsOfTheirOwn(sent) is { } kept ? [.. kept, AnswerOf(result)] : [],
            replace: wholeHistory,
            session.Id,
            CancellationToken.None);

    /// <summary>
    /// The messages with each round's calls under ids of their own, their results with them; null unless every call is
    /// answered in the next message and every result answers a call of the message before, as the API requires.
    /// </summary>
    /// <remarks>
    /// A client that gives its calls no ids gets ones by place (<c>call_1_0</c>), and one that sends only its new round
    /// gets the same ones every round: kept one after another they would be two calls of one id, which the API refuses.
    /// </remarks>
    private static List<ClaudeMessage>? WithRoundsOfTheirOwn(IReadOnlyList<ClaudeMessage> messages)
    {
        List<ClaudeMessage> kept = new(messages.Count);
        // The previous message's calls: the client's id, and the one kept.
        Dictionary<string, string> calls = new(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            var renamed = message;
            var results = message.ToolResults ?? [];
            if (results.Count != calls.Count || results.Any(result => !calls.ContainsKey(result.ToolCallId)) || results.DistinctBy(r => r.ToolCallId).Count() != results.Count)
            {
                return null;
            }

            if (results.Count > 0)
            {
                renamed = renamed with { ToolResults = [.. results.Select(result => result with { ToolCallId = calls[result.ToolCallId] })] };
            }

            calls = new(StringComparer.Ordinal);
            foreach (var call in message.ToolCalls ?? [])
            {
                if (!calls.TryAdd(call.Id, "toolu_kept_" + Guid.NewGuid().ToString("N")))
                {
                    return null;
                }
            }

            if (calls.Count > 0)
            {
                renamed = renamed with { ToolCalls = [.. message.ToolCalls!.Select(call => call with { Id = calls[call.Id] })] };
            }

            kept.Add(renamed);
        }

        return calls.Count == 0 ? kept : null;
    }

    /// <summary>Ends a session no conversation holds any more: its waiting or kept process, its folder and the CLI's files for it.</summary>
    private async Task DiscardAsync(ClaudeCliSession session)
    {
        // A turn waiting in it for function results first: its process must not outlive its folder.
        await _paused.EndSessionAsync(session.Id);
        await launcher.EndSessionAsync(session.Id);
        cli.DeleteWorkingDirectory(session.WorkingDirectory, session.Id);
    }

    private sealed class Leases(List<IDisposable> leases) : IDisposable
    {
        public void Dispose()
        {
            for (var i = leases.Count - 1; i >= 0; i--)
            {
                leases[i].Dispose();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Conversation {Conversation} comes back with the results of calls whose process is gone: it goes on from the shared store, not from the session that waited for them")]
    private static partial void LogUnansweredSessionLetGo(ILogger logger, string conversation);

    [LoggerMessage(Level = LogLevel.Information, Message = "Conversation {Conversation} went on at another worker: its session here is let go")]
    private static partial void LogSessionBehindSharedStore(ILogger logger, string conversation);

    [LoggerMessage(Level = LogLevel.Information, Message = "Conversation {Conversation} goes on from the {Count} messages the shared store kept (this worker had no session of it)")]
    private static partial void LogSessionRebuiltFromSharedStore(ILogger logger, string conversation, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Conversation {ConversationId} came with another history than its session's (a regenerated answer or an edit); it goes on in a session written from the client's")]
    private static partial void LogConversationBranched(ILogger logger, string conversationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Claude CLI did not find the session written for conversation {ConversationId}; sending its history as a transcript")]
    private static partial void LogWrittenSessionNotFound(ILogger logger, string conversationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude session of conversation {ConversationId} is gone; starting a new one from the {Messages} earlier messages the client sent")]
    private static partial void LogSessionRebuilt(ILogger logger, string conversationId, int messages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude session of conversation {ConversationId} is gone and the client sent no history; the conversation starts afresh")]
    private static partial void LogSessionLostWithoutHistory(ILogger logger, string conversationId);

    [LoggerMessage(Level = LogLevel.Information, Message = "The turn that waited for {Results} function results is gone; the conversation is rebuilt up to its question and the calls get these results again")]
    private static partial void LogToolTurnRebuilt(ILogger logger, int results);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A Claude CLI process ended before answering without saying why; trying the turn once more")]
    private static partial void LogProcessEndedSilently(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude turn failed before answering: {Kind}: {Message}")]
    private static partial void LogTurnFailed(ILogger logger, ClaudeErrorKind kind, string message);
}
