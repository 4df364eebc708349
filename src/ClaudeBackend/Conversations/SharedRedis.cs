using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// The one connection to the Redis that workers and fronts share (<see cref="ClaudeBackendOptions.Redis"/>), made at
/// start (<see cref="ConnectAsync"/>) and kept, reconnecting by itself. A Redis that is down never stops the start: the
/// first connection and each command wait at most <see cref="Timeout"/>, and a caller that must not wait at all asks
/// <see cref="IsConnected"/> first.
/// </summary>
public sealed class SharedRedis(IOptions<ClaudeBackendOptions> options) : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a look-up on the way to a turn's first token waits (a placement, a budget's count): Redis on a healthy
    /// network answers in a millisecond, and the caller goes on without it.
    /// </summary>
    public static readonly TimeSpan LookupTimeout = TimeSpan.FromMilliseconds(250);

    private readonly Lazy<Task<ConnectionMultiplexer>> _connection = new(() => ConnectionMultiplexer.ConnectAsync(
        options.Value.Redis!,
        configure => (configure.AbortOnConnectFail, configure.ConnectTimeout, configure.SyncTimeout, configure.AsyncTimeout) = (false, 3000, 3000, 3000)));

    public bool IsConfigured => options.Value.Redis is { Length: > 0 };

    /// <summary>
    /// The Redis key of <paramref name="text"/> (an owner with a conversation id, a first message): the SHA-256 of it
    /// after <paramref name="prefix"/>, so that Redis never holds who said what.
    /// </summary>
    public static RedisKey KeyOf(string prefix, string text) => prefix + TextDigest.Sha256Hex(text);

    /// <summary>Whether commands would reach Redis now (false while the first connection is being made).</summary>
    public bool IsConnected => IsConfigured && _connection.Value is { IsCompletedSuccessfully: true } connection && connection.Result.IsConnected;

    /// <summary>
    /// Makes the first connection, when Redis is configured (at start, so that no request waits for it); done when it is
    /// made or has failed (and is then retried in the background).
    /// </summary>
    public Task ConnectAsync() => IsConfigured ? _connection.Value : Task.CompletedTask;

    public async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken) => (await ConnectionAsync(cancellationToken)).GetDatabase();

    /// <summary>The connection itself, for what a database does not do: subscriptions, and hearing it fail and come back.</summary>
    public async Task<IConnectionMultiplexer> ConnectionAsync(CancellationToken cancellationToken) =>
        await _connection.Value.WaitAsync(Timeout, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated && _connection.Value.IsCompletedSuccessfully)
        {
            await (await _connection.Value).DisposeAsync();
        }
    }
}
