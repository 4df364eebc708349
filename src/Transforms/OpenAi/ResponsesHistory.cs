using System.Security.Cryptography;
using System.Text;
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

    /// <summary>Keeps the conversation up to and with a response; never waits.</summary>
    void Add(string? owner, string responseId, IReadOnlyList<ClaudeMessage> messages);
}

/// <summary>In this process's memory, the most recent <see cref="Capacity"/>: a restart loses the ids.</summary>
public sealed class LocalResponsesHistory : IResponsesHistory
{
    public const int Capacity = 1_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, IReadOnlyList<ClaudeMessage> Messages)>> _byKey = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, IReadOnlyList<ClaudeMessage> Messages)> _recent = new();

    public void Add(string? owner, string responseId, IReadOnlyList<ClaudeMessage> messages)
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
/// restart, goes on from a response any of them gave. What this gateway gave is found in its own memory first, so a
/// request that follows at once, or a Redis that is down, finds it here.
/// </summary>
public sealed partial class RedisResponsesHistory(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisResponsesHistory> logger)
    : IResponsesHistory
{
    private readonly LocalResponsesHistory _local = new();

    public void Add(string? owner, string responseId, IReadOnlyList<ClaudeMessage> messages)
    {
        _local.Add(owner, responseId, messages);
        if (redis.IsConnected)
        {
            _ = AddAsync(KeyOf(owner, responseId), messages);
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
            var kept = await database.StringGetAsync(KeyOf(owner, responseId)).WaitAsync(SharedRedis.Timeout, cancellationToken);
            return kept.IsNull ? null : ClaudeBackendContract.ParseMessages((byte[])kept!);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            return null;
        }
    }

    private async Task AddAsync(RedisKey key, IReadOnlyList<ClaudeMessage> messages)
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            await database.StringSetAsync(key, ClaudeBackendContract.SerializeMessages(messages), options.Value.ConversationIdleLimit, flags: CommandFlags.FireAndForget);
        }
        catch (Exception exception)
        {
            LogUnavailable(logger, exception);
        }
    }

    /// <summary>Redis sees only a digest of the owner and the id.</summary>
    private static RedisKey KeyOf(string? owner, string responseId) =>
        "claudeproxy:response:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(LocalResponsesHistory.KeyOf(owner, responseId))));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: previous responses are found on the gateway that gave them until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}
