using System.Net;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.Transforms.OpenAi;

/// <summary>
/// The conversations of the responses this gateway gave, per owner, so that a request naming one in
/// <c>previous_response_id</c> goes on from it (unless the request said <c>store: false</c>). The session behind a
/// conversation is the lineage store's (found by this history), so losing an entry loses only the id.
/// </summary>
public interface IResponsesHistory
{
    /// <summary>The conversation up to and with the response <paramref name="responseId"/>; null when none is kept.</summary>
    ValueTask<IReadOnlyList<ClaudeMessage>?> FindAsync(string? owner, string responseId, CancellationToken cancellationToken);

    /// <summary>
    /// Keeps the conversation up to and with a response, which went on from <paramref name="previousResponseId"/> (the
    /// first of <paramref name="messages"/> are that one's); never waits.
    /// </summary>
    void Add(string? owner, string responseId, string? previousResponseId, IReadOnlyList<ClaudeMessage> messages);
}

/// <summary>In this process's memory, the most recent <see cref="Capacity"/>: a restart loses the ids.</summary>
internal sealed class LocalResponsesHistory : IResponsesHistory
{
    public const int Capacity = 1_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, IReadOnlyList<ClaudeMessage> Messages)>> _byKey = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, IReadOnlyList<ClaudeMessage> Messages)> _recent = new();

    public void Add(string? owner, string responseId, string? previousResponseId, IReadOnlyList<ClaudeMessage> messages)
    {
        var key = KeyOf(owner, responseId);
        lock (_gate)
        {
            if (_byKey.Remove(key, out var earlier))
            {
                _recent.Remove(earlier);
            }

            _byKey[key] = _recent.AddFirst((key, messages));
            while (_recent.Count > Capacity)
            {
                _byKey.Remove(_recent.Last!.Value.Key);
                _recent.RemoveLast();
            }
        }
    }

    public ValueTask<IReadOnlyList<ClaudeMessage>?> FindAsync(string? owner, string responseId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_byKey.TryGetValue(KeyOf(owner, responseId), out var node) ? node.Value.Messages : null);
        }
    }

    /// <summary>The owner is length-prefixed: no response id can make one owner's key equal another's.</summary>
    internal static string KeyOf(string? owner, string responseId) => $"{owner?.Length}:{owner}\n{responseId}";
}

/// <summary>
/// In Redis too (<see cref="ClaudeBackendOptions.Redis"/>), as long as a conversation is kept
/// (<see cref="ClaudeBackendOptions.ConversationIdleLimit"/>): every gateway before the same Redis, and this one after a
/// restart, goes on from a response any of them gave. A chain of responses shares one list of messages, each response
/// a pointer to its length, so a conversation costs its messages once, not once per response; a response that another
/// already went on from starts a list of its own (a branch). What this gateway gave is found in its own memory first.
/// </summary>
internal sealed partial class RedisResponsesHistory(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisResponsesHistory> logger)
    : IResponsesHistory
{
    private const string ListField = "list";
    private const string LengthField = "length";

    private readonly LocalResponsesHistory _local = new();

    public void Add(string? owner, string responseId, string? previousResponseId, IReadOnlyList<ClaudeMessage> messages)
    {
        _local.Add(owner, responseId, previousResponseId, messages);
        if (redis.IsConnected)
        {
            _ = AddAsync(owner, responseId, previousResponseId, messages);
        }
    }

    public async ValueTask<IReadOnlyList<ClaudeMessage>?> FindAsync(string? owner, string responseId, CancellationToken cancellationToken)
    {
        var here = await _local.FindAsync(owner, responseId, cancellationToken);
        if (here is not null || !redis.IsConnected)
        {
            return here;
        }

        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var pointer = await database.HashGetAllAsync(PointerKeyOf(owner, responseId)).WaitAsync(SharedRedis.Timeout, cancellationToken);
            if (ListOf(pointer) is not { } list)
            {
                return null;
            }

            var items = await database.ListRangeAsync(list.Key, 0, list.Length - 1).WaitAsync(SharedRedis.Timeout, cancellationToken);
            return items.Length == list.Length ? [.. items.Select(item => ClaudeBackendContract.ParseMessage((byte[])item!))] : null;
        }
        catch (System.Text.Json.JsonException exception)
        {
            LogUnreadable(logger, exception);
            return null;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            // Not "not found": the response may well be kept, and a retry may find it.
            throw new DialectRequestException($"Previous response with id '{responseId}' could not be looked up: the store did not answer.", HttpStatusCode.ServiceUnavailable);
        }
    }

    private async Task AddAsync(string? owner, string responseId, string? previousResponseId, IReadOnlyList<ClaudeMessage> messages)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            var keepFor = options.Value.ConversationIdleLimit;
            if (previousResponseId is not null
                && ListOf(await database.HashGetAllAsync(PointerKeyOf(owner, previousResponseId))) is { } previous
                && messages.Count >= previous.Length)
            {
                // The previous response's list, while it ends with that response: this one's messages follow it there.
                var follow = database.CreateTransaction();
                follow.AddCondition(Condition.ListLengthEqual(previous.Key, previous.Length));
                _ = follow.ListRightPushAsync(previous.Key, [.. messages.Skip((int)previous.Length).Select(ItemOf)]);
                _ = follow.KeyExpireAsync(previous.Key, keepFor);
                PointTo(follow, PointerKeyOf(owner, responseId), previous.Key, messages.Count, keepFor);
                if (await follow.ExecuteAsync())
                {
                    return;
                }
            }

            var list = (RedisKey)("claudeproxy:responses:" + Guid.NewGuid().ToString("N"));
            var start = database.CreateTransaction();
            _ = start.ListRightPushAsync(list, [.. messages.Select(ItemOf)]);
            _ = start.KeyExpireAsync(list, keepFor);
            PointTo(start, PointerKeyOf(owner, responseId), list, messages.Count, keepFor);
            await start.ExecuteAsync();
        }
        catch (Exception exception)
        {
            LogUnavailable(logger, exception);
        }
    }

    private static void PointTo(ITransaction transaction, RedisKey pointer, RedisKey list, long length, TimeSpan keepFor)
    {
        _ = transaction.HashSetAsync(pointer, [new HashEntry(ListField, (string)list!), new HashEntry(LengthField, length)]);
        _ = transaction.KeyExpireAsync(pointer, keepFor);
    }

    private static (RedisKey Key, long Length)? ListOf(HashEntry[] pointer)
    {
        var fields = pointer.ToDictionary(entry => (string)entry.Name!, entry => entry.Value);
        return fields.TryGetValue(ListField, out var list) && fields.TryGetValue(LengthField, out var length) && length.TryParse(out long count)
            ? ((string)list!, count)
            : null;
    }

    private static RedisValue ItemOf(ClaudeMessage message) => ClaudeBackendContract.SerializeMessage(message);

    /// <summary>Redis sees only a digest of the owner and the id.</summary>
    private static RedisKey PointerKeyOf(string? owner, string responseId) =>
        SharedRedis.KeyOf("claudeproxy:response:", LocalResponsesHistory.KeyOf(owner, responseId));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: previous responses are found on the gateway that gave them until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A previous response kept in Redis could not be read; it is taken as not found")]
    private static partial void LogUnreadable(ILogger logger, Exception exception);
}
