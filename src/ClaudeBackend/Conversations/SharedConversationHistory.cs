using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
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

    /// <summary>Records a finished turn: <paramref name="messages"/> either follow what is kept, or replace it.</summary>
    Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, CancellationToken cancellationToken);
}

/// <summary>No shared store: every conversation lives in its worker's own session.</summary>
internal sealed class NoSharedConversationHistory : ISharedConversationHistory
{
    public Task<IReadOnlyList<ClaudeMessage>?> LoadAsync(string conversationKey, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ClaudeMessage>?>(null);

    public Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, CancellationToken cancellationToken) =>
        Task.CompletedTask;
}

/// <summary>
/// The conversations' messages in Redis: a list per conversation (one JSON message an item), kept as long as the local
/// store keeps a conversation (<see cref="ClaudeBackendOptions.ConversationIdleLimit"/>). A Redis that does not answer
/// costs the conversation its history on another worker, never a turn.
/// </summary>
internal sealed partial class RedisConversationHistory(IOptions<ClaudeBackendOptions> options, ILogger<RedisConversationHistory> logger)
    : ISharedConversationHistory, IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private readonly Lazy<Task<ConnectionMultiplexer>> _redis = new(() => ConnectionMultiplexer.ConnectAsync(
        options.Value.Redis!,
        configure => (configure.AbortOnConnectFail, configure.ConnectTimeout, configure.SyncTimeout, configure.AsyncTimeout) = (false, 3000, 3000, 3000)));

    public async Task<IReadOnlyList<ClaudeMessage>?> LoadAsync(string conversationKey, CancellationToken cancellationToken)
    {
        try
        {
            var database = (await _redis.Value.WaitAsync(Timeout, cancellationToken)).GetDatabase();
            var items = await database.ListRangeAsync(KeyOf(conversationKey)).WaitAsync(Timeout, cancellationToken);
            return items.Length == 0
                ? null
                : [.. items.Select(item => JsonSerializer.Deserialize((string)item!, ClaudeBackendJsonContext.Default.ClaudeMessage)!)];
        }
        catch (Exception exception) when (exception is RedisException or TimeoutException or JsonException)
        {
            LogUnavailable(logger, exception);
            return null;
        }
    }

    public async Task SaveAsync(string conversationKey, IReadOnlyList<ClaudeMessage> messages, bool replace, CancellationToken cancellationToken)
    {
        try
        {
            var database = (await _redis.Value.WaitAsync(Timeout, cancellationToken)).GetDatabase();
            var key = KeyOf(conversationKey);
            var transaction = database.CreateTransaction();
            if (replace)
            {
                _ = transaction.KeyDeleteAsync(key);
            }

            _ = transaction.ListRightPushAsync(key, [.. messages.Select(m => (RedisValue)JsonSerializer.Serialize(m, ClaudeBackendJsonContext.Default.ClaudeMessage))]);
            _ = transaction.KeyExpireAsync(key, options.Value.ConversationIdleLimit);
            await transaction.ExecuteAsync().WaitAsync(Timeout, cancellationToken);
        }
        catch (Exception exception) when (exception is RedisException or TimeoutException)
        {
            LogUnavailable(logger, exception);
        }
    }

    /// <summary>A conversation's key names its owner and id: Redis sees only its digest.</summary>
    private static RedisKey KeyOf(string conversationKey) =>
        "claudeproxy:conversation:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(conversationKey)));

    public async ValueTask DisposeAsync()
    {
        if (_redis.IsValueCreated && _redis.Value.IsCompletedSuccessfully)
        {
            await (await _redis.Value).DisposeAsync();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: conversations are kept on this worker only until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}
