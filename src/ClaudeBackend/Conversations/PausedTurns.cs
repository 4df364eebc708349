using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>A turn that waits, in its CLI process, for the results of the client's functions.</summary>
internal interface IPausedTurn
{
    /// <summary>The session the turn runs in: a later turn of it ends the wait.</summary>
    ClaudeCliSession? Session { get; }

    /// <summary>When the turn began to wait (a <see cref="TimeProvider"/> timestamp); null while it runs.</summary>
    long? PausedAt { get; set; }

    /// <summary>Ends the wait: the process stops waiting and whatever the turn holds is freed.</summary>
    ValueTask EndPausedAsync();
}

/// <summary>
/// Turns paused for the client's function results, each in its CLI process waiting on the calls. The client's next
/// request finds its turn by the ids of the calls, which it sends back with the results, or, for a client that drops
/// them, by the history up to the calls; both are per owner, so no other key's request can answer them. A turn no one
/// comes back to within <see cref="ClaudeBackendOptions.ToolResultTimeout"/> of its pause is ended, and beyond
/// <see cref="ClaudeBackendOptions.MaxPausedTurns"/> the one that has waited the longest gives way.
/// </summary>
internal sealed partial class PausedTurns<TTurn>(TimeProvider timeProvider, IOptions<ClaudeBackendOptions> options, ILogger logger)
    where TTurn : class, IPausedTurn
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Paused> _byKey = new(StringComparer.Ordinal);
    private readonly List<Paused> _waiting = [];

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Keeps a paused turn until its results come (<see cref="Take"/>) or its wait is over.</summary>
    /// <param name="scope">What the turn's process was started with (model, system prompt, functions).</param>
    /// <param name="historyKey">The key of the history up to and with the calls.</param>
    public void Add(TTurn turn, string? owner, string scope, IReadOnlyList<ClaudeToolCall> calls, string historyKey)
    {
        List<string> keys = [.. calls.Select(c => CallKey(owner, c.Id)), historyKey];
        if (turn.Session is { } session)
        {
            keys.Add(SessionKey(session.Id));
        }

        // A turn put back (its results came incomplete, or the gateway was busy) keeps the deadline of its first pause.
        turn.PausedAt ??= timeProvider.GetTimestamp();
        var paused = new Paused(turn, keys, scope);
        List<Paused> ending = [];
        lock (_gate)
        {
            foreach (var key in keys)
            {
                if (_byKey.GetValueOrDefault(key) is { } earlier && !ending.Contains(earlier))
                {
                    // The same calls or the same history paused again: the later turn is the one the client knows.
                    ending.Add(earlier);
                    Remove(earlier);
                }

                _byKey[key] = paused;
            }

            _waiting.Add(paused);
            while (_waiting.Count > options.Value.MaxPausedTurns)
            {
                // By when it began to wait: a turn put back keeps its first pause.
                var oldest = _waiting.MinBy(p => p.Turn.PausedAt)!;
                Remove(oldest);
                ending.Add(oldest);
                LogMadeRoom(logger, options.Value.MaxPausedTurns);
            }

            var left = options.Value.ToolResultTimeout - timeProvider.GetElapsedTime(turn.PausedAt.Value);
            paused.Timer = timeProvider.CreateTimer(_ => _ = ExpireAsync(paused), null, left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }

        foreach (var earlier in ending)
        {
            _ = EndAsync(earlier);
        }
    }

    /// <summary>
    /// The paused turn that made any of <paramref name="callIds"/> for <paramref name="owner"/>, else the one paused at
    /// <paramref name="historyKey"/>, else the one paused in <paramref name="sessionId"/>, or null; it no longer waits here.
    /// </summary>
    /// <param name="scope">What the turn's process was started with: results sent with another cannot go on in it.</param>
    public TTurn? Take(string? owner, IEnumerable<string> callIds, string historyKey, Guid? sessionId, out string? scope)
    {
        Paused? found;
        lock (_gate)
        {
            found = callIds.Select(id => _byKey.GetValueOrDefault(CallKey(owner, id))).FirstOrDefault(p => p is not null)
                ?? _byKey.GetValueOrDefault(historyKey)
                ?? (sessionId is { } session ? _byKey.GetValueOrDefault(SessionKey(session)) : null);
            scope = found?.Scope;
            if (found is null)
            {
                return null;
            }

            Remove(found);
        }

        found.Timer?.Dispose();
        return found.Turn;
    }

    /// <summary>Ends the turn paused in <paramref name="sessionId"/>, if any: the conversation went on without the results.</summary>
    public Task EndSessionAsync(Guid sessionId)
    {
        Paused? paused;
        lock (_gate)
        {
            paused = _byKey.GetValueOrDefault(SessionKey(sessionId));
            if (paused is not null)
            {
                Remove(paused);
            }
        }

        return paused is null ? Task.CompletedTask : EndAsync(paused);
    }

    private async Task ExpireAsync(Paused paused)
    {
        lock (_gate)
        {
            if (!_waiting.Contains(paused))
            {
                return;
            }

            Remove(paused);
        }

        LogExpired(logger, options.Value.ToolResultTimeout.TotalSeconds);
        await EndAsync(paused);
    }

    private static async Task EndAsync(Paused paused)
    {
        paused.Timer?.Dispose();
        await paused.Turn.EndPausedAsync();
    }

    private void Remove(Paused paused)
    {
        foreach (var key in paused.Keys)
        {
            if (_byKey.GetValueOrDefault(key) == paused)
            {
                _byKey.Remove(key);
            }
        }

        _waiting.Remove(paused);
    }

    private static string CallKey(string? owner, string callId) => "call:" + ConversationStore.KeyOf(owner, callId);

    private static string SessionKey(Guid sessionId) => "session:" + sessionId;

    [LoggerMessage(Level = LogLevel.Information, Message = "A turn paused for the client's function results got none within {Seconds} s; its process was stopped")]
    private static partial void LogExpired(ILogger logger, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "More than {Max} turns wait for function results; the one that waited the longest was stopped")]
    private static partial void LogMadeRoom(ILogger logger, int max);

    private sealed class Paused(TTurn turn, List<string> keys, string scope)
    {
        public TTurn Turn { get; } = turn;

        public List<string> Keys { get; } = keys;

        public string Scope { get; } = scope;

        public ITimer? Timer { get; set; }
    }
}
