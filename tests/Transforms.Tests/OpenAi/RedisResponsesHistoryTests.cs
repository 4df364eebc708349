using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.OpenAi;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClaudeProxy.Transforms.Tests.OpenAi;

/// <summary>Previous responses kept in a real redis-server on loopback, as gateways before one Redis share them.</summary>
public sealed class RedisResponsesHistoryTests : IAsyncDisposable
{
    private readonly SharedRedisConnections _connections = new();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static readonly ClaudeMessage[] Conversation =
        [new(ClaudeMessage.UserRole, "remember 7"), new(ClaudeMessage.AssistantRole, "7 it is", ToolCalls: [new("call_1", "note", """{"n":7}""")])];

    /// <summary>A gateway's history, with a connection of its own, made as a gateway makes it at start.</summary>
    private async Task<RedisResponsesHistory> GatewayAsync(string redis, bool connected = true)
    {
        var (connection, options) = await _connections.ConnectAsync(redis, connected);
        return new(connection, options, NullLogger<RedisResponsesHistory>.Instance);
    }

    /// <summary>What <paramref name="gateway"/> finds once another's write has reached Redis (it is sent, not awaited).</summary>
    private static async Task<IReadOnlyList<ClaudeMessage>?> FoundAsync(RedisResponsesHistory gateway, string? owner, string id)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (true)
        {
            if (await gateway.FindAsync(owner, id, Cancel) is { } found || TimeProvider.System.GetElapsedTime(deadline) > TimeSpan.FromSeconds(5))
            {
                return await gateway.FindAsync(owner, id, Cancel);
            }

            await Task.Delay(20, Cancel);
        }
    }

    [Fact]
    public async Task Another_gateway_goes_on_from_a_response_this_one_gave_for_the_same_caller_only()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var one = await GatewayAsync(redis.Configuration);
        var other = await GatewayAsync(redis.Configuration);

        one.Add("alice", "resp_1", null, Conversation);
        var found = await FoundAsync(other, "alice", "resp_1");

        Assert.NotNull(found);
        Assert.Equal(["remember 7", "7 it is"], found.Select(m => m.Text));
        Assert.Equal("""{"n":7}""", found[1].ToolCalls![0].Arguments);
        Assert.Null(await other.FindAsync("bob", "resp_1", Cancel));
        Assert.Null(await other.FindAsync(null, "resp_1", Cancel));
    }

    [Fact]
    public async Task A_chain_of_responses_keeps_each_message_once_and_a_branch_keeps_its_own()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var one = await GatewayAsync(redis.Configuration);
        var other = await GatewayAsync(redis.Configuration);
        ClaudeMessage[] second = [.. Conversation, new(ClaudeMessage.UserRole, "and 8?"), new(ClaudeMessage.AssistantRole, "8 too")];
        ClaudeMessage[] branch = [.. Conversation, new(ClaudeMessage.UserRole, "forget it"), new(ClaudeMessage.AssistantRole, "forgotten")];

        one.Add("alice", "resp_1", null, Conversation);
        Assert.NotNull(await FoundAsync(other, "alice", "resp_1"));
        one.Add("alice", "resp_2", "resp_1", second);
        Assert.NotNull(await FoundAsync(other, "alice", "resp_2"));
        one.Add("alice", "resp_3", "resp_1", branch);

        Assert.Equal(["remember 7", "7 it is", "forget it", "forgotten"], (await FoundAsync(other, "alice", "resp_3"))!.Select(m => m.Text));
        Assert.Equal(["remember 7", "7 it is", "and 8?", "8 too"], (await other.FindAsync("alice", "resp_2", Cancel))!.Select(m => m.Text));
        Assert.Equal(["remember 7", "7 it is"], (await other.FindAsync("alice", "resp_1", Cancel))!.Select(m => m.Text));
        // Two lists: the chain's (four messages, each once) and the branch's.
        await using var reader = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var lists = reader.GetServers().Single().Keys(pattern: "claudeproxy:responses:*").ToList();
        var lengths = await Task.WhenAll(lists.Select(list => reader.GetDatabase().ListLengthAsync(list)));
        Assert.Equal([4L, 4L], lengths);
    }

    [Fact]
    public async Task A_redis_that_stalls_is_a_503_not_a_response_that_is_not_there()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var gateway = await GatewayAsync(redis.Configuration);
        gateway.Add("alice", "resp_here", null, Conversation);

        await redis.PauseClientsAsync(TimeSpan.FromSeconds(6));
        var here = await gateway.FindAsync("alice", "resp_here", Cancel);
        var exception = await Assert.ThrowsAsync<DialectRequestException>(async () => await gateway.FindAsync("alice", "resp_elsewhere", Cancel));

        Assert.Equal(["remember 7", "7 it is"], here!.Select(m => m.Text));
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, exception.Status);
    }

    [Fact]
    public async Task A_redis_that_is_not_there_leaves_the_responses_this_gateway_gave_without_a_wait()
    {
        var gateway = await GatewayAsync($"127.0.0.1:{GatewayProcess.FreeLoopbackPort()}", connected: false);
        var started = TimeProvider.System.GetTimestamp();

        gateway.Add("alice", "resp_1", null, Conversation);
        var here = await gateway.FindAsync("alice", "resp_1", Cancel);
        var elsewhere = await gateway.FindAsync("alice", "resp_2", Cancel);

        Assert.Equal(["remember 7", "7 it is"], here!.Select(m => m.Text));
        Assert.Null(elsewhere);
        Assert.True(TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(1));
    }

    public ValueTask DisposeAsync() => _connections.DisposeAsync();
}
