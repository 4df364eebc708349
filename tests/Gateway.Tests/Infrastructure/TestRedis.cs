using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>A real redis-server on loopback for a test: skipped where none is installed, a failure in CI.</summary>
internal static class TestRedis
{
    public static async Task<RedisServer> StartAsync()
    {
        if (!RedisServer.IsInstalled)
        {
            const string Missing = "Needs redis-server (.ci/run installs the Debian package).";
            Assert.Skip(RepoPaths.IsCi ? throw new InvalidOperationException(Missing) : Missing);
        }

        return await RedisServer.StartAsync();
    }
}
