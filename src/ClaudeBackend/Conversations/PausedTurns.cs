using ClaudeProxy.ClaudeBackend.Contract;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// Turns paused for the client's function results, each in its CLI process waiting on the calls. The client's next
/// request finds its turn by the ids of the calls, which it sends back with the results, or, for a client that drops
/// them, by the history up to the calls; both are per owner, so no other key's request can answer them. A turn no one
/// comes back to within <see cref="ClaudeBackendOptions.ToolResultTimeout"/> is ended.
/// </summary>
internal sealed partial class PausedTurns(TimeProvider timeProvider, IOptions<ClaudeBackendOptions> options, ILogger logger)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Paused> _byKey = new(StringComparer.Ordinal);

    /// <summary>Keeps a paused turn until its results come (<see cref="Take"/>) or the wait is over.</summary>
    /// <param name="historyKey">The key of the history up to and with the calls.</param>
    public void Add(ClaudeTurn turn, string? owner, IReadOnlyList<ClaudeToolCall> calls, string historyKey)
    {
        List<string> keys = [.. calls.Select(c => CallKey(owner, c.Id)), historyKey];
        if (turn.Session is { } session)
        {
            keys.Add(SessionKey(session.Id));
        }

        var paused = new Paused(turn, keys);
        List<Paused> replaced = [];
        lock (_gate)
        {
            foreach (var key in keys)
            {
                if (_byKey.Remove(key, out var earlier) && earlier != paused)
                {
                    replaced.Add(earlier);
                }

                _byKey[key] = paused;
            }

            paused.Timer = timeProvider.CreateTimer(_ => _ = ExpireAsync(paused), null, options.Value.ToolResultTimeout, Timeout.InfiniteTimeSpan);
        }

        foreach (var earlier in replaced.Distinct())
        {
            lock (_gate)
            {
                Remove(earlier);
            }

            _ = EndAsync(earlier);
        }
    }

    /// <summary>The paused turn that made any of <paramref name="callIds"/> for <paramref name="owner"/>, else the one paused at <paramref name="historyKey"/>.</summary>
    public ClaudeTurn? Take(string? owner, IEnumerable<string> callIds, string historyKey)
    {
        lock (_gate)
        {
            var paused = callIds.Select(id => _byKey.GetValueOrDefault(CallKey(owner, id))).FirstOrDefault(p => p is not null)
                ?? _byKey.GetValueOrDefault(historyKey);
            if (paused is null)
            {
                return null;
            }

            Remove(paused);
            paused.Timer?.Dispose();
            return paused.Turn;
        }
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
            if (!paused.Keys.Any(key => _byKey.GetValueOrDefault(key) == paused))
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
    }

    private static string CallKey(string? owner, string callId) => "call:" + ConversationStore.KeyOf(owner, callId);

    private static string SessionKey(Guid sessionId) => "session:" + sessionId;

    [LoggerMessage(Level = LogLevel.Information, Message = "A turn paused for the client's function results got none within {Seconds} s; its process was stopped")]
    private static partial void LogExpired(ILogger logger, double seconds);

    private sealed class Paused(ClaudeTurn turn, List<string> keys)
    {
        public ClaudeTurn Turn { get; } = turn;

        public List<string> Keys { get; } = keys;

        public ITimer? Timer { get; set; }
    }
}
