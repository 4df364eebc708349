using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>A real redis-server on loopback for a test: skipped where none is installed, a failure in CI.</summary>
internal static class TestRedis
{
    public static async Task<RedisServer> StartAsync()
    {
        if (RedisServer.Unavailable is { } missing)
        {
            Assert.Skip(missing);
        }

        return await RedisServer.StartAsync();
    }
}
