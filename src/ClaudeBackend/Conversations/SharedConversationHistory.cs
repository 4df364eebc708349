using System.Collections.Concurrent;
using ClaudeProxy.ClaudeBackend.Contract;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// What a conversation with an id has said, kept where every worker sees it, so that one whose worker is gone goes on
/// at another: that worker writes it as a session of its own (<see cref="Cli.ClaudeSessionFile"/>) and resumes it.
/// Without a shared store (<see cref="ClaudeBackendOptions.Redis"/>), nothing is kept beyond the local session.
/// </summary>
public interface ISharedConversationHistory
{
    /// <summary>The conversation's messages, oldest first; null when none are kept.</summary>
    Task<IReadOnlyList<ClaudeMessage>?> LoadAsync(string conversationKey, CancellationToken cancellationToken);

    /// <summary>
    /// The session the conversation's last turn ran in, wherever that was: a worker whose own session of it is another
    /// one missed turns (it was gone while another worker went on) and must not resume it.
    /// </summary>
    Task<Guid?> SessionOfAsync(string conversationKey, CancellationToken cancellationToken);

    /// <summary>
    /// Records a finished turn that ran in <paramref name="session"/>: <paramref name="messages"/> either replace what
    /// is kept (the whole history), or follow it, but only where something is kept: a history without its beginning is
    /// never kept. No messages: nothing is kept any more.
    /// </summary>
    Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, Guid session, CancellationToken cancellationToken);

    /// <summary>
    /// Whether a turn of the conversation that this worker saved did not reach the store (since its last whole history
    /// did): what is kept lags behind the session the store names.
    /// </summary>
    bool MissedATurn(string conversationKey);
}

/// <summary>No shared store: every conversation lives in its worker's own session.</summary>
internal sealed class NoSharedConversationHistory : ISharedConversationHistory
{
    public Task<IReadOnlyList<ClaudeMessage>?> LoadAsync(string conversationKey, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ClaudeMessage>?>(null);

    public Task<Guid?> SessionOfAsync(string conversationKey, CancellationToken cancellationToken) => Task.FromResult<Guid?>(null);

    public Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, Guid session, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    public bool MissedATurn(string conversationKey) => false;
}

/// <summary>
/// The conversations' messages in Redis: a list per conversation (one JSON message an item), kept as long as the local
/// store keeps a conversation (<see cref="ClaudeBackendOptions.ConversationIdleLimit"/>), and the session its last turn
/// ran in. A Redis that does not answer (or a configuration it cannot take) costs the conversation its history on
/// another worker, never a turn; each call waits at most <see cref="SharedRedis.Timeout"/>.
/// </summary>
internal sealed partial class RedisConversationHistory(SharedRedis redis, IOptions<ClaudeBackendOptions> options, ILogger<RedisConversationHistory> logger)
    : ISharedConversationHistory
{
    // The conversations whose turns did not all reach Redis, until a whole history does.
    private readonly ConcurrentDictionary<string, bool> _missed = new(StringComparer.Ordinal);

    public bool MissedATurn(string conversationKey) => _missed.ContainsKey(conversationKey);

    public async Task<IReadOnlyList<ClaudeMessage>?> LoadAsync(string conversationKey, CancellationToken cancellationToken)
    {
        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var items = await database.ListRangeAsync(KeyOf(conversationKey)).WaitAsync(SharedRedis.Timeout, cancellationToken);
            return items.Length == 0
                ? null
                : [.. items.Select(item => ClaudeBackendContract.ParseMessage((byte[])item!))];
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            return null;
        }
    }

    public async Task<Guid?> SessionOfAsync(string conversationKey, CancellationToken cancellationToken)
    {
        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var session = await database.StringGetAsync(SessionKeyOf(conversationKey)).WaitAsync(SharedRedis.Timeout, cancellationToken);
            return Guid.TryParse((string?)session, out var id) ? id : null;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnavailable(logger, exception);
            return null;
        }
    }

    public async Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, Guid session, CancellationToken cancellationToken)
    {
        try
        {
            var database = await redis.DatabaseAsync(cancellationToken);
            var (key, sessionKey, keepFor) = (KeyOf(conversationKey), SessionKeyOf(conversationKey), options.Value.ConversationIdleLimit);
            var transaction = database.CreateTransaction();
            if (replace || messages.Count == 0)
            {
                _ = transaction.KeyDeleteAsync(key);
            }
            else
            {
                // Only after what is kept: should it be gone (expired, lost), a part without its beginning is not kept.
                transaction.AddCondition(Condition.KeyExists(key));
            }

            if (messages.Count > 0)
            {
                _ = transaction.ListRightPushAsync(key, [.. messages.Select(m => (RedisValue)ClaudeBackendContract.SerializeMessage(m))]);
                _ = transaction.KeyExpireAsync(key, keepFor);
            }

            _ = transaction.StringSetAsync(sessionKey, session.ToString(), keepFor);
            if (!await transaction.ExecuteAsync().WaitAsync(SharedRedis.Timeout, cancellationToken))
            {
                // Nothing was kept to follow: what is kept is nothing, and its session none.
                await database.KeyDeleteAsync([key, sessionKey]).WaitAsync(SharedRedis.Timeout, cancellationToken);
            }
            else if (replace)
            {
                _missed.TryRemove(conversationKey, out _);
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            _missed[conversationKey] = true;
            LogUnavailable(logger, exception);
        }
    }

    private static RedisKey SessionKeyOf(string conversationKey) => KeyOf(conversationKey).Append(":session");

    /// <summary>A conversation's key names its owner and id: Redis sees only its digest.</summary>
    private static RedisKey KeyOf(string conversationKey) => SharedRedis.KeyOf("claudeproxy:conversation:", conversationKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: conversations are kept on this worker only until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}

/// <summary>A Redis configuration that StackExchange.Redis cannot read stops the start, rather than every turn later.</summary>
internal sealed class RedisConfigurationValidator : IValidateOptions<ClaudeBackendOptions>
{
    public ValidateOptionsResult Validate(string? name, ClaudeBackendOptions options)
    {
        if (options.Redis is not { Length: > 0 } redis)
        {
            return ValidateOptionsResult.Success;
        }

        try
        {
            return ConfigurationOptions.Parse(redis).EndPoints.Count > 0
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail($"ClaudeBackend:Redis (CLAUDEPROXY_REDIS) '{redis}' names no server (host:port).");
        }
        catch (ArgumentException exception)
        {
            return ValidateOptionsResult.Fail($"ClaudeBackend:Redis (CLAUDEPROXY_REDIS) '{redis}' is not a Redis configuration: {exception.Message}");
        }
    }
}
