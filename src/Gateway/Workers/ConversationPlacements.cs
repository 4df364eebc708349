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

    /// <summary>
    /// Records that the conversation's turn went to <paramref name="worker"/>, where <see cref="FindAsync"/> had found
    /// it on <paramref name="found"/> (null: nowhere); never waits.
    /// </summary>
    void Place(string conversation, string worker, string? found);
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
        ValueTask.FromResult(new ConversationPlacement(_placements.Get<string>(SharedRedis.Digest(conversation)), Unplaced: false));

    public void Place(string conversation, string worker, string? found) =>
        _placements.Set(SharedRedis.Digest(conversation), worker, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = options.Value.ConversationIdleLimit });

    /// <summary>
    /// Forgets the placement of the conversation whose digest (<see cref="SharedRedis.Digest"/>) is <paramref name="digest"/>,
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
/// placed itself it finds even before Redis has it, or while Redis is away. A front that moves a conversation to another
/// worker says so on a channel that every front hears, and forgets its own placement of a conversation another moved:
/// so while it hears the channel, its own placement is the latest, and a conversation's next turn on the front of its
/// last goes to its worker without a look-up (the time to first token). A Redis that is down, or slow to answer, costs
/// the placement (the conversation goes by its hash), never a turn, and at most <see cref="SharedRedis.LookupTimeout"/> of one.
/// </summary>
internal sealed partial class RedisConversationPlacements(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisConversationPlacements> logger)
    : IConversationPlacements, IDisposable
{
    private static readonly RedisChannel Moves = RedisChannel.Literal("claudeproxy:placement:moved");

    private readonly LocalConversationPlacements _local = new(options);
    private readonly Lock _hearingLock = new();
    private Task? _hearing;
    private volatile bool _hearsMoves;

    public async ValueTask<ConversationPlacement> FindAsync(string conversation, CancellationToken cancellationToken)
    {
        var here = await _local.FindAsync(conversation, cancellationToken);
        if (!redis.IsConnected)
        {
            return here;
        }

        if (Volatile.Read(ref _hearing) is null)
        {
            _ = HearMovesAsync();
        }

        if (here.Worker is not null && _hearsMoves)
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

    public void Place(string conversation, string worker, string? found)
    {
        _local.Place(conversation, worker, found);
        if (redis.IsConnected)
        {
            // Sent in order on the one connection: the conversation's next turn, on this front, reads it, and a front
            // that hears of a move reads the new placement.
            _ = PlaceAsync(conversation, worker, moved: worker != found);
        }
    }

    /// <summary>
    /// Subscribes to the moves of every front, once (again after a failure); done when this front hears them. Until it
    /// does, and from a lost connection until it is back (when what was missed meanwhile is forgotten with the rest of
    /// this front's own placements), every look-up asks Redis.
    /// </summary>
    internal Task HearMovesAsync()
    {
        lock (_hearingLock)
        {
            return _hearing ??= SubscribeAsync();
        }

        async Task SubscribeAsync()
        {
            try
            {
                var connection = await redis.ConnectionAsync(CancellationToken.None);
                connection.ConnectionFailed += (_, _) => _hearsMoves = false;
                connection.ConnectionRestored += (_, _) =>
                {
                    _local.Clear();
                    _hearsMoves = true;
                };
                await connection.GetSubscriber().SubscribeAsync(Moves, (_, message) =>
                {
                    // "<digest>:<worker>". A front's own placements, and those it agrees with, stay; any other is forgotten
                    // rather than taken, for a message may come after a later placement: Redis has the latest.
                    if (((string?)message)?.Split(':', 2) is [var digest, var worker])
                    {
                        _local.ForgetUnlessOn(digest, worker);
                    }
                });
                _hearsMoves = true;
            }
            catch (Exception exception)
            {
                LogUnavailable(logger, exception);
                lock (_hearingLock)
                {
                    _hearing = null;
                }
            }
        }
    }

    private async Task PlaceAsync(string conversation, string worker, bool moved)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            await database.StringSetAsync(KeyOf(conversation), worker, options.Value.ConversationIdleLimit, flags: CommandFlags.FireAndForget);
            if (moved)
            {
                await database.PublishAsync(Moves, $"{SharedRedis.Digest(conversation)}:{worker}", CommandFlags.FireAndForget);
            }
        }
        catch (Exception exception)
        {
            LogUnavailable(logger, exception);
        }
    }

    private static RedisKey KeyOf(string conversation) => SharedRedis.KeyOf("claudeproxy:placement:", conversation);

    public void Dispose() => _local.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: conversations go to their workers by hash until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}
