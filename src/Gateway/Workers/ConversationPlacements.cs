using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>What a front knows of where a conversation was placed.</summary>
/// <param name="Worker">The address of the worker that took its last turn; null when none is known.</param>
/// <param name="Unplaced">The shared store answered that no front placed it anywhere.</param>
internal readonly record struct ConversationPlacement(string? Worker, bool Unplaced);

/// <summary>
/// Which worker each conversation is on (<see cref="ConversationAffinity.Key"/> to worker address), kept as long as a
/// conversation is (<see cref="ClaudeBackendOptions.ConversationIdleLimit"/>). With Redis, every front shares it and it
/// survives their restarts; without, it is this front's memory.
/// </summary>
internal interface IConversationPlacements
{
    ValueTask<ConversationPlacement> FindAsync(string conversation, CancellationToken cancellationToken);

    /// <summary>Records that the conversation's turn went to <paramref name="worker"/>; never waits.</summary>
    void Place(string conversation, string worker);
}

/// <summary>
/// This front's own memory of placements, by digest (no message text is held), bounded: when full, an entry is not
/// kept and the least recently used are trimmed. A conversation it does not know may have been placed before a restart:
/// never "unplaced".
/// </summary>
internal sealed class LocalConversationPlacements(IOptions<ClaudeBackendOptions> options) : IConversationPlacements, IDisposable
{
    public const int Capacity = 100_000;

    private readonly MemoryCache _placements = new(new MemoryCacheOptions { SizeLimit = Capacity, CompactionPercentage = 0.1 });

    public ValueTask<ConversationPlacement> FindAsync(string conversation, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ConversationPlacement(_placements.Get<string>(TextDigest.Sha256Hex(conversation)), Unplaced: false));

    public void Place(string conversation, string worker) =>
        _placements.Set(TextDigest.Sha256Hex(conversation), worker, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = options.Value.ConversationIdleLimit });

    /// <summary>
    /// Forgets the placement of the conversation whose digest (<see cref="TextDigest.Sha256Hex"/>) is <paramref name="digest"/>,
    /// unless it is on <paramref name="worker"/> already.
    /// </summary>
    public void ForgetUnlessOn(string digest, string worker)
    {
        if (_placements.Get<string>(digest) != worker)
        {
            _placements.Remove(digest);
        }
    }

    public void Clear() => _placements.Clear();

    public void Dispose() => _placements.Dispose();
}

/// <summary>
/// Placements in Redis, shared by every front before the same workers, with this front's own in front of them: what it
/// placed itself it finds even before Redis has it, or while Redis is away. A front whose placement changes what Redis
/// held (a move, or a new conversation) says so on a channel that every front hears, and a front forgets its own
/// placement of a conversation another placed elsewhere. So while it hears the channel, its own placement is the
/// latest, and a conversation's next turn on the front of its last goes to its worker without a look-up (the time to
/// first token). What it placed while it did not hear (before its subscription, or while the subscription's connection
/// was down) it forgets once it hears again. A Redis that is down, or slow to answer, costs the placement (the
/// conversation goes by its hash), never a turn, and at most <see cref="SharedRedis.LookupTimeout"/> of one.
/// </summary>
internal sealed partial class RedisConversationPlacements(
    SharedRedis redis, IOptions<ClaudeBackendOptions> options, TimeProvider timeProvider, ILogger<RedisConversationPlacements> logger)
    : IConversationPlacements, IDisposable
{
    private static readonly RedisChannel Moves = RedisChannel.Literal("claudeproxy:placement:moved");

    /// <summary>How long a front that could not subscribe asks Redis for every placement before it tries again.</summary>
    private static readonly TimeSpan SubscribeRetry = TimeSpan.FromSeconds(30);

    private readonly LocalConversationPlacements _local = new(options);
    private readonly Lock _hearingLock = new();
    private Task? _hearing;
    private ISubscriber? _subscriber;
    private long _retryAt;

    public async ValueTask<ConversationPlacement> FindAsync(string conversation, CancellationToken cancellationToken)
    {
        var here = await _local.FindAsync(conversation, cancellationToken);
        if (!redis.IsConnected)
        {
            return here;
        }

        if (here.Worker is not null && HearsMoves())
        {
            return here;
        }

        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var worker = (string?)await database.StringGetAsync(KeyOf(conversation)).WaitAsync(SharedRedis.LookupTimeout, cancellationToken);
            // Another front's placement is the latest; this front's own covers a write still on its way.
            return worker is not null ? new ConversationPlacement(worker, Unplaced: false)
                : here.Worker is not null ? here
                : new ConversationPlacement(null, Unplaced: true);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            return here;
        }
    }

    public void Place(string conversation, string worker)
    {
        _local.Place(conversation, worker);
        if (redis.IsConnected)
        {
            // Sent in order on the one connection: the conversation's next turn, on this front, reads it.
            _ = PlaceAsync(conversation, worker);
        }
    }

    /// <summary>
    /// Subscribes to the placements of every front, once (again after <see cref="SubscribeRetry"/> if it failed); done
    /// when this front hears them.
    /// </summary>
    internal Task HearMovesAsync()
    {
        lock (_hearingLock)
        {
            if (_hearing is null || (_hearing.IsCompleted && Volatile.Read(ref _subscriber) is null && timeProvider.GetTimestamp() >= Interlocked.Read(ref _retryAt)))
            {
                _hearing = HearAsync();
            }

            return _hearing;
        }
    }

    /// <summary>Whether this front hears every placement now: subscribed, on a connection that is up.</summary>
    private bool HearsMoves()
    {
        if (Volatile.Read(ref _subscriber) is { } subscriber)
        {
            return subscriber.IsConnected(Moves);
        }

        if (Volatile.Read(ref _hearing) is not { IsCompleted: false } && timeProvider.GetTimestamp() >= Interlocked.Read(ref _retryAt))
        {
            _ = HearMovesAsync();
        }

        return false;
    }

    private async Task HearAsync()
    {
        try
        {
            var connection = await redis.ConnectionAsync(CancellationToken.None);
            var subscriber = connection.GetSubscriber();
            await subscriber.SubscribeAsync(Moves, (_, message) =>
            {
                // "<digest>:<worker>". A front's own placements, and those it agrees with, stay; any other is forgotten
                // rather than taken, for a message may come after a later placement: Redis has the latest.
                if (((string?)message)?.Split(':', 2) is [var digest, var worker])
                {
                    _local.ForgetUnlessOn(digest, worker);
                }
            });
            // The subscription's connection drops and comes back on its own (the library subscribes again): what this
            // front placed meanwhile may have been moved unheard. The events come on pool threads, in any order.
            connection.ConnectionFailed += (_, e) => ForgetUnheard(e.ConnectionType);
            connection.ConnectionRestored += (_, e) => ForgetUnheard(e.ConnectionType);
            // Placed before this front heard anything: unheard too.
            _local.Clear();
            Volatile.Write(ref _subscriber, subscriber);
        }
        catch (Exception exception)
        {
            LogNotSubscribed(logger, exception);
            Interlocked.Exchange(ref _retryAt, timeProvider.GetTimestamp() + (long)(SubscribeRetry.TotalSeconds * timeProvider.TimestampFrequency));
        }
    }

    private void ForgetUnheard(ConnectionType connection)
    {
        if (connection == ConnectionType.Subscription)
        {
            _local.Clear();
        }
    }

    private async Task PlaceAsync(string conversation, string worker)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            // What Redis held, not what this front found: a front that went by an entry it should have forgotten still
            // tells the others, which then ask Redis.
            var previous = (string?)await database.StringSetAndGetAsync(KeyOf(conversation), worker, options.Value.ConversationIdleLimit).WaitAsync(SharedRedis.Timeout);
            if (previous != worker)
            {
                await database.PublishAsync(Moves, $"{TextDigest.Sha256Hex(conversation)}:{worker}", CommandFlags.FireAndForget);
            }
        }
        catch (Exception exception)
        {
            LogUnavailable(logger, exception);
        }
    }

    internal static RedisKey KeyOf(string conversation) => SharedRedis.KeyOf("claudeproxy:placement:", conversation);

    public void Dispose()
    {
        _ = Volatile.Read(ref _subscriber)?.UnsubscribeAsync(Moves, flags: CommandFlags.FireAndForget);
        _local.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: conversations go to their workers by hash until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not subscribe to the placements channel on Redis (its ACL must allow the channel claudeproxy:placement:moved): every placement is looked up in Redis")]
    private static partial void LogNotSubscribed(ILogger logger, Exception exception);
}
