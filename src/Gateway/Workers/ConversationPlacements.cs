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
        ValueTask.FromResult(new ConversationPlacement(_placements.Get<string>(SharedRedis.Digest(conversation)), Unplaced: false));

    public void Place(string conversation, string worker) =>
        _placements.Set(SharedRedis.Digest(conversation), worker, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = options.Value.ConversationIdleLimit });

    public void Dispose() => _placements.Dispose();
}

/// <summary>
/// Placements in Redis, shared by every front before the same workers, with this front's own in front of them: what it
/// placed itself it finds even before Redis has it, or while Redis is away. A Redis that is down, or slow to answer,
/// costs the placement (the conversation goes by its hash), never a turn, and at most <see cref="SharedRedis.LookupTimeout"/> of one.
/// </summary>
internal sealed partial class RedisConversationPlacements(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisConversationPlacements> logger)
    : IConversationPlacements, IDisposable
{
    private readonly LocalConversationPlacements _local = new(options);

    public async ValueTask<ConversationPlacement> FindAsync(string conversation, CancellationToken cancellationToken)
    {
        var here = await _local.FindAsync(conversation, cancellationToken);
        if (!redis.IsConnected)
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

    private async Task PlaceAsync(string conversation, string worker)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            await database.StringSetAsync(KeyOf(conversation), worker, options.Value.ConversationIdleLimit, flags: CommandFlags.FireAndForget);
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
