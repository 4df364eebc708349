using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

/// <summary>The shared store of conversations against a real redis-server on loopback.</summary>
public sealed class RedisConversationHistoryTests : IAsyncDisposable
{
    private readonly SharedRedisConnections _connections = new();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>A store as a worker has it, with a connection of its own.</summary>
    private async Task<RedisConversationHistory> StoreAsync(string redis, bool connected = true)
    {
        var (connection, options) = await _connections.ConnectAsync(redis, connected);
        return new(connection, options, NullLogger<RedisConversationHistory>.Instance);
    }

    public ValueTask DisposeAsync() => _connections.DisposeAsync();

    [Fact]
    public async Task A_turn_adds_to_what_is_kept_and_a_whole_history_replaces_it_for_every_worker()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var one = await StoreAsync(redis.Configuration);
        var other = await StoreAsync(redis.Configuration);
        ClaudeMessage[] first = [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello", ToolCalls: [new("call_1", "f", """{"a":1}""")])];

        var (sessionOne, sessionOther) = (Guid.NewGuid(), Guid.NewGuid());

        await one.SaveAsync("owner\nconv", first, replace: true, sessionOne, Cancel);
        await one.SaveAsync("owner\nconv", [new(ClaudeMessage.UserRole, "again"), new(ClaudeMessage.AssistantRole, "yes")], replace: false, sessionOne, Cancel);
        var appended = await other.LoadAsync("owner\nconv", Cancel);
        var lastBefore = await other.SessionOfAsync("owner\nconv", Cancel);
        await other.SaveAsync("owner\nconv", [new(ClaudeMessage.UserRole, "edited"), new(ClaudeMessage.AssistantRole, "ok")], replace: true, sessionOther, Cancel);
        var replaced = await one.LoadAsync("owner\nconv", Cancel);

        Assert.NotNull(appended);
        Assert.NotNull(replaced);
        Assert.Equal(["hi", "hello", "again", "yes"], appended.Select(m => m.Text));
        Assert.Equal("f", appended[1].ToolCalls?[0].Name);
        Assert.Equal(["edited", "ok"], replaced.Select(m => m.Text));
        Assert.Null(await one.LoadAsync("owner\nanother", Cancel));
        Assert.Equal(sessionOne, lastBefore);
        Assert.Equal(sessionOther, await one.SessionOfAsync("owner\nconv", Cancel));
    }

    [Fact]
    public async Task A_turn_that_would_follow_nothing_kept_is_not_kept_and_no_messages_forget_the_conversation()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var store = await StoreAsync(redis.Configuration);

        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "later"), new(ClaudeMessage.AssistantRole, "turn")], replace: false, Guid.NewGuid(), Cancel);
        var withoutBeginning = await store.LoadAsync("k", Cancel);
        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello")], replace: true, Guid.NewGuid(), Cancel);
        await store.SaveAsync("k", [], replace: true, Guid.NewGuid(), Cancel);

        Assert.Null(withoutBeginning);
        Assert.Null(await store.LoadAsync("k", Cancel));
    }

    [Fact]
    public async Task A_turn_that_did_not_reach_a_stalled_redis_is_known_as_missed_until_a_whole_history_does()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var store = await StoreAsync(redis.Configuration);
        var session = Guid.NewGuid();
        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello")], replace: true, session, Cancel);
        var missedBefore = store.MissedATurn("k");

        // Held 4 s: the save gives up after 3 s, and the next one is answered once the pause is over.
        await redis.PauseClientsAsync(TimeSpan.FromSeconds(4));
        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "again"), new(ClaudeMessage.AssistantRole, "yes")], replace: false, session, Cancel);
        var missedWhileStalled = store.MissedATurn("k");
        var otherMissed = store.MissedATurn("other");
        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello")], replace: true, session, Cancel);

        Assert.False(missedBefore);
        Assert.True(missedWhileStalled);
        Assert.False(otherMissed);
        // The session the store names is the same all along: only this says that what is kept lags behind it.
        Assert.Equal(session, await store.SessionOfAsync("k", Cancel));
        Assert.False(store.MissedATurn("k"));
    }

    [Theory]
    [InlineData("127.0.0.1:6379", true)]
    [InlineData(",,,", false)]
    [InlineData("host:notaport", false)]
    public void A_redis_configuration_it_cannot_read_stops_the_start(string redis, bool valid)
    {
        Assert.Equal(valid, new RedisConfigurationValidator().Validate(null, new ClaudeBackendOptions { Redis = redis }).Succeeded);
    }

    [Fact]
    public async Task A_redis_that_does_not_answer_costs_the_history_not_the_turn()
    {
        var store = await StoreAsync($"127.0.0.1:{GatewayProcess.FreeLoopbackPort()}", connected: false);

        await store.SaveAsync("k", [new(ClaudeMessage.UserRole, "x")], replace: true, Guid.NewGuid(), Cancel);

        Assert.Null(await store.LoadAsync("k", Cancel));
    }
}
