using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.OpenAi;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Transforms.Tests.OpenAi;

/// <summary>Previous responses kept in a real redis-server on loopback, as gateways before one Redis share them.</summary>
public sealed class RedisResponsesHistoryTests : IAsyncDisposable
{
    private readonly List<SharedRedis> _connections = [];

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static readonly ClaudeMessage[] Conversation =
        [new(ClaudeMessage.UserRole, "remember 7"), new(ClaudeMessage.AssistantRole, "7 it is", ToolCalls: [new("call_1", "note", """{"n":7}""")])];

    /// <summary>A gateway's history, with a connection of its own, connected as a gateway connects at start.</summary>
    private async Task<RedisResponsesHistory> GatewayAsync(string redis, bool connected = true)
    {
        var options = Options.Create(new ClaudeBackendOptions { Redis = redis });
        var connection = new SharedRedis(options);
        _connections.Add(connection);
        if (connected)
        {
            await connection.ConnectAsync();
            Assert.True(connection.IsConnected);
        }

        return new(connection, options, NullLogger<RedisResponsesHistory>.Instance);
    }

    [Fact]
    public async Task Another_gateway_goes_on_from_a_response_this_one_gave_for_the_same_caller_only()
    {
        if (RedisServer.Unavailable is { } missing)
        {
            Assert.Skip(missing);
        }

        using var redis = await RedisServer.StartAsync();
        var one = await GatewayAsync(redis.Configuration);
        var other = await GatewayAsync(redis.Configuration);

        one.Add("alice", "resp_1", Conversation);
        // The write is on its way: once the giving gateway reads it back, Redis has it.
        Assert.NotNull(await one.FindAsync("alice", "resp_1", Cancel));
        var found = await other.FindAsync("alice", "resp_1", Cancel);

        Assert.NotNull(found);
        Assert.Equal(["remember 7", "7 it is"], found.Select(m => m.Text));
        Assert.Equal("""{"n":7}""", found[1].ToolCalls![0].Arguments);
        Assert.Null(await other.FindAsync("bob", "resp_1", Cancel));
        Assert.Null(await other.FindAsync(null, "resp_1", Cancel));
    }

    [Fact]
    public async Task A_redis_that_does_not_answer_leaves_the_responses_this_gateway_gave_without_a_wait()
    {
        var gateway = await GatewayAsync($"127.0.0.1:{GatewayProcess.FreeLoopbackPort()}", connected: false);
        var started = TimeProvider.System.GetTimestamp();

        gateway.Add("alice", "resp_1", Conversation);
        var here = await gateway.FindAsync("alice", "resp_1", Cancel);
        var elsewhere = await gateway.FindAsync("alice", "resp_2", Cancel);

        Assert.Equal(["remember 7", "7 it is"], here!.Select(m => m.Text));
        Assert.Null(elsewhere);
        Assert.True(TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(1));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }
}
