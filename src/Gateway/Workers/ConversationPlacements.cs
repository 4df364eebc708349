using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>What a front knows of where a conversation was placed.</summary>
/// <param name="Worker">The address of the worker that ran its last turn; null when none is known.</param>
/// <param name="Unplaced">The store answered that no turn of it ran anywhere: a new conversation, whatever its history.</param>
internal readonly record struct ConversationPlacement(string? Worker, bool Unplaced);

/// <summary>
/// Which worker each conversation is on (<see cref="ConversationAffinity.Digest"/> to worker address), kept as long as
/// a conversation is (<see cref="ClaudeBackendOptions.ConversationIdleLimit"/>). With Redis, every front shares it and
/// it survives their restarts; without, it is this front's memory.
/// </summary>
internal interface IConversationPlacements
{
    ValueTask<ConversationPlacement> FindAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Records that the conversation's turn ran on <paramref name="worker"/>; never waits.</summary>
    void Place(string digest, string worker);
}

/// <summary>
/// This front's own memory of placements, bounded (the least recently used go first). A conversation it does not know
/// may have been placed before a restart, or by another front: never "unplaced".
/// </summary>
internal sealed class LocalConversationPlacements(IOptions<ClaudeBackendOptions> options) : IConversationPlacements, IDisposable
{
    public const int Capacity = 100_000;

    private readonly MemoryCache _placements = new(new MemoryCacheOptions { SizeLimit = Capacity });

    public ValueTask<ConversationPlacement> FindAsync(string digest, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ConversationPlacement(_placements.Get<string>(digest), Unplaced: false));

    public void Place(string digest, string worker) =>
        _placements.Set(digest, worker, new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = options.Value.ConversationIdleLimit });

    public void Dispose() => _placements.Dispose();
}

/// <summary>
/// Placements in Redis, shared by every front before the same workers. A Redis that is down costs the placement (the
/// conversation goes by its hash), never a turn, and never a wait: a front asks only while it is connected.
/// </summary>
internal sealed partial class RedisConversationPlacements(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisConversationPlacements> logger)
    : IConversationPlacements
{
    public async ValueTask<ConversationPlacement> FindAsync(string digest, CancellationToken cancellationToken)
    {
        if (!redis.IsConnected)
        {
            return default;
        }

        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var worker = (string?)await database.StringGetAsync(KeyOf(digest)).WaitAsync(SharedRedis.Timeout, cancellationToken);
            return new ConversationPlacement(worker, Unplaced: worker is null);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            return default;
        }
    }

    public void Place(string digest, string worker)
    {
        if (redis.IsConnected)
        {
            // Sent in order on the one connection: the conversation's next turn, on this front, reads it.
            _ = PlaceAsync(digest, worker);
        }
    }

    private async Task PlaceAsync(string digest, string worker)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            await database.StringSetAsync(KeyOf(digest), worker, options.Value.ConversationIdleLimit, flags: CommandFlags.FireAndForget);
        }
        catch (Exception exception)
        {
            LogUnavailable(logger, exception);
        }
    }

    private static RedisKey KeyOf(string digest) => "claudeproxy:placement:" + digest;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: conversations go to their workers by hash until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}
