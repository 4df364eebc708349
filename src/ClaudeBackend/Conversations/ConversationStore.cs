using ClaudeProxy.ClaudeBackend.Cli;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// Maps a client's conversation id, or a history (<see cref="ConversationLineage"/>), to the Claude session that holds
/// it, in a JSON file that survives restarts.
/// Each conversation gets a working directory of its own, because the CLI stores sessions per working directory.
/// </summary>
public sealed class ConversationStore
{
    private const string FileName = "conversations.json";
    private readonly string _file;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _fileLock = new(1, 1);

    // One lock per conversation with a turn running or waiting, dropped when the last one leaves: bounded by activity.
    private readonly Lock _turnLocksGate = new();
    private readonly Dictionary<string, TurnLock> _turnLocks = new(StringComparer.Ordinal);
    private Dictionary<string, ConversationRecord>? _records;

    public ConversationStore(IOptions<ClaudeBackendOptions> options, TimeProvider timeProvider)
    {
        DataDirectory = options.Value.DataDirectory!;
        _file = Path.Combine(DataDirectory, FileName);
        WorkRoot = Path.Combine(DataDirectory, "conversations");
        _timeProvider = timeProvider;
    }

    public string DataDirectory { get; }

    /// <summary>The folder that holds every conversation's working directory.</summary>
    public string WorkRoot { get; }

    /// <summary>
    /// The store's key for a client's conversation id, scoped by owner so one caller can never name another's. The
    /// owner is length-prefixed (and no owner is marked apart): no choice of id can make one owner's key equal another's.
    /// </summary>
    public static string KeyOf(string? owner, string conversationId) =>
        owner is null ? $"-:{conversationId}" : $"{owner.Length}:{owner}/{conversationId}";

    /// <summary>
    /// The conversation's own working directory (made when a process first starts there). The id is hashed, so no id
    /// can name a path.
    /// </summary>
    public string WorkingDirectoryOf(string conversationId) => Path.Combine(WorkRoot, TextDigest.Sha256Hex(conversationId)[..32]);

    /// <summary>Waits until no other turn of the same conversation runs: one session, one CLI process at a time.</summary>
    public async Task<IDisposable> EnterTurnAsync(string conversationId, CancellationToken cancellationToken)
    {
        var turnLock = Join(conversationId);
        try
        {
            await turnLock.Semaphore.WaitAsync(cancellationToken);
        }
        catch
        {
            Leave(conversationId, turnLock);
            throw;
        }

        return new TurnLease(this, conversationId, turnLock);
    }

    /// <summary>The conversation's turn lock if no turn of it runs or waits now; null otherwise.</summary>
    public IDisposable? TryEnterTurn(string conversationId)
    {
        var turnLock = Join(conversationId);
        if (turnLock.Semaphore.Wait(0))
        {
            return new TurnLease(this, conversationId, turnLock);
        }

        Leave(conversationId, turnLock);
        return null;
    }

    private TurnLock Join(string conversationId)
    {
        lock (_turnLocksGate)
        {
            if (!_turnLocks.TryGetValue(conversationId, out var turnLock))
            {
                _turnLocks[conversationId] = turnLock = new TurnLock();
            }

            turnLock.Users++;
            return turnLock;
        }
    }

    private void Leave(string conversationId, TurnLock turnLock)
    {
        lock (_turnLocksGate)
        {
            if (--turnLock.Users == 0)
            {
                _turnLocks.Remove(conversationId);
            }
        }
    }

    /// <summary>How many conversations have a turn lock now (running or waiting turns).</summary>
    internal int ActiveTurnLocks
    {
        get
        {
            lock (_turnLocksGate)
            {
                return _turnLocks.Count;
            }
        }
    }

    /// <summary>A fresh, empty working directory for a conversation not known yet (a warm process starts in it).</summary>
    public string CreateWorkingDirectory()
    {
        var directory = Path.Combine(WorkRoot, "new-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>The session that holds the conversation, and the working directory the CLI keeps it under.</summary>
    public Task<ClaudeCliSession?> FindAsync(string conversationId, CancellationToken cancellationToken) =>
        ReadAsync(records => records.TryGetValue(conversationId, out var record) ? SessionOf(conversationId, record) : null, cancellationToken);

    public Task RememberAsync(string conversationId, ClaudeCliSession session, CancellationToken cancellationToken) =>
        RememberAsync(conversationId, session, history: null, cancellationToken);

    /// <param name="history">What the session has seen (<see cref="ConversationLineage.KeyOf"/>), when that is known.</param>
    public Task RememberAsync(string conversationId, ClaudeCliSession session, string? history, CancellationToken cancellationToken) =>
        UpdateAsync(records => records[conversationId] = RecordOf(session, history), cancellationToken);

    /// <summary>What the conversation's session has seen, as <see cref="ConversationLineage.KeyOf"/> names it; null when not known.</summary>
    public Task<string?> HistoryOfAsync(string conversationId, CancellationToken cancellationToken) =>
        ReadAsync(records => records.TryGetValue(conversationId, out var record) ? record.History : null, cancellationToken);

    /// <summary>Stores the session under <paramref name="key"/> unless another is stored there; whether it was stored.</summary>
    public async Task<bool> TryAddAsync(string key, ClaudeCliSession session, CancellationToken cancellationToken)
    {
        var added = false;
        await UpdateAsync(records => added = records.TryAdd(key, RecordOf(session, history: null)), cancellationToken);
        return added;
    }

    public Task ForgetAsync(string conversationId, CancellationToken cancellationToken) =>
        UpdateAsync(records => records.Remove(conversationId), cancellationToken);

    /// <summary>Forgets several conversations in one write.</summary>
    public Task ForgetAsync(IReadOnlyCollection<string> conversationIds, CancellationToken cancellationToken) =>
        UpdateAsync(
            records =>
            {
                foreach (var id in conversationIds)
                {
                    records.Remove(id);
                }
            },
            cancellationToken);

    /// <summary>Every conversation the store knows, with its session, working directory and when it was last used.</summary>
    public Task<IReadOnlyList<StoredConversation>> ListAsync(CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<StoredConversation>>(
            records => [.. records.Select(entry => new StoredConversation(entry.Key, SessionOf(entry.Key, entry.Value), entry.Value.UpdatedAt))],
            cancellationToken);

    private ClaudeCliSession SessionOf(string conversationId, ConversationRecord record) =>
        new(record.SessionId, record.WorkingDirectory ?? WorkingDirectoryOf(conversationId));

    private ConversationRecord RecordOf(ClaudeCliSession session, string? history) =>
        new(session.Id, _timeProvider.GetUtcNow(), session.WorkingDirectory, history);

    private async Task<T> ReadAsync<T>(Func<Dictionary<string, ConversationRecord>, T> read, CancellationToken cancellationToken)
    {
        await _fileLock.WaitAsync(cancellationToken);
        try
        {
            return read(Load());
        }
        finally
        {
            _fileLock.Release();
        }
    }

    private async Task UpdateAsync(Action<Dictionary<string, ConversationRecord>> change, CancellationToken cancellationToken)
    {
        await _fileLock.WaitAsync(cancellationToken);
        try
        {
            var records = Load();
            change(records);
            await SaveAsync(records, cancellationToken);
        }
        finally
        {
            _fileLock.Release();
        }
    }

    // A lost mapping (a damaged file) only means the next turn starts a new session.
    private Dictionary<string, ConversationRecord> Load() =>
        _records ??= new Dictionary<string, ConversationRecord>(
            JsonFile.Read(_file, ClaudeBackendJsonContext.Default.ConversationFile, _timeProvider)?.Conversations ?? [], StringComparer.Ordinal);

    private Task SaveAsync(Dictionary<string, ConversationRecord> records, CancellationToken cancellationToken) =>
        JsonFile.WriteAsync(_file, new ConversationFile(records), ClaudeBackendJsonContext.Default.ConversationFile, cancellationToken);

    private sealed class TurnLock
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);

        /// <summary>Turns holding or waiting for the lock; guarded by the store's gate.</summary>
        public int Users { get; set; }
    }

    private sealed class TurnLease(ConversationStore store, string conversationId, TurnLock turnLock) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                turnLock.Semaphore.Release();
                store.Leave(conversationId, turnLock);
            }
        }
    }
}

/// <summary>A conversation as the store holds it.</summary>
/// <param name="Key">The store's key (<see cref="ConversationStore.KeyOf"/>).</param>
/// <param name="LastUsed">When a turn of it last succeeded.</param>
public sealed record StoredConversation(string Key, ClaudeCliSession Session, DateTimeOffset LastUsed);

internal sealed record ConversationFile(Dictionary<string, ConversationRecord> Conversations);

/// <param name="WorkingDirectory">Where the session was started; null in files written before warm conversation spares (then <see cref="ConversationStore.WorkingDirectoryOf"/>).</param>
/// <param name="History">What the session has seen, for a conversation with an id (<see cref="ConversationLineage.KeyOf"/>); null when not known.</param>
internal sealed record ConversationRecord(Guid SessionId, DateTimeOffset UpdatedAt, string? WorkingDirectory = null, string? History = null);
