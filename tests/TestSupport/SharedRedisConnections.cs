using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.TestSupport;

/// <summary>Connections to Redis as gateways and workers make them (<see cref="SharedRedis"/>), closed with the test.</summary>
public sealed class SharedRedisConnections : IAsyncDisposable
{
    private readonly List<SharedRedis> _connections = [];

    /// <summary>
    /// A connection to <paramref name="configuration"/> with the options that name it; made before it is returned, as a
    /// gateway makes it at start, unless <paramref name="connected"/> is false (a Redis that is not there).
    /// </summary>
    public async Task<(SharedRedis Redis, IOptions<ClaudeBackendOptions> Options)> ConnectAsync(string configuration, bool connected = true)
    {
        var options = Options.Create(new ClaudeBackendOptions { Redis = configuration });
        var redis = new SharedRedis(options);
        _connections.Add(redis);
        if (connected)
        {
            await redis.ConnectAsync();
            Xunit.Assert.True(redis.IsConnected, $"Redis at {configuration} did not connect");
        }

        return (redis, options);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }
}
