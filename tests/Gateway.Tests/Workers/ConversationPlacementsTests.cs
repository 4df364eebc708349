using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Gateway.Workers;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Tests.Workers;

public sealed class ConversationPlacementsTests : IAsyncDisposable
{
    private readonly SharedRedisConnections _connections = new();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>A front's placements in Redis, with a connection of its own, made as a front makes it at start.</summary>
    private async Task<RedisConversationPlacements> FrontAsync(string redis, bool connected = true)
    {
        var (connection, options) = await _connections.ConnectAsync(redis, connected);
        return new(connection, options, NullLogger<RedisConversationPlacements>.Instance);
    }

    [Fact]
    public async Task Every_front_on_the_same_redis_finds_where_another_placed_a_conversation_and_knows_one_nobody_placed()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        using var one = await FrontAsync(redis.Configuration);
        using var other = await FrontAsync(redis.Configuration);

        var unplaced = await other.FindAsync("conversation-a", Cancel);
        one.Place("conversation-a", "http://worker-1:22434/");
        var placed = await one.FindAsync("conversation-a", Cancel);
        var elsewhere = await other.FindAsync("conversation-a", Cancel);
        other.Place("conversation-a", "http://worker-2:22434/");
        // Each front's commands are in order on its connection; another's read may come before.
        Assert.Equal("http://worker-2:22434/", (await other.FindAsync("conversation-a", Cancel)).Worker);
        var moved = await one.FindAsync("conversation-a", Cancel);

        Assert.Equal(new ConversationPlacement(null, Unplaced: true), unplaced);
        Assert.Equal(new ConversationPlacement("http://worker-1:22434/", Unplaced: false), placed);
        Assert.Equal(placed, elsewhere);
        // Another front's placement is the latest, over this front's own memory.
        Assert.Equal("http://worker-2:22434/", moved.Worker);
    }

    [Fact]
    public async Task A_redis_that_stalls_costs_a_lookup_a_quarter_second_and_what_this_front_placed_is_still_found()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        using var front = await FrontAsync(redis.Configuration);
        front.Place("placed-here", "http://worker-1:22434/");

        await redis.PauseClientsAsync(TimeSpan.FromSeconds(5));
        var started = TimeProvider.System.GetTimestamp();
        var here = await front.FindAsync("placed-here", Cancel);
        var unknown = await front.FindAsync("placed-nowhere", Cancel);
        var took = TimeProvider.System.GetElapsedTime(started);

        Assert.Equal(new ConversationPlacement("http://worker-1:22434/", Unplaced: false), here);
        // Unknown, not "unplaced": the conversation goes by its hash, not to whichever worker is least busy.
        Assert.Equal(default, unknown);
        Assert.True(took < TimeSpan.FromSeconds(2), $"{took}");
    }

    [Fact]
    public async Task A_redis_that_is_not_there_leaves_the_placement_unknown_without_a_wait()
    {
        using var front = await FrontAsync($"127.0.0.1:{GatewayProcess.FreeLoopbackPort()}", connected: false);

        var started = TimeProvider.System.GetTimestamp();
        var first = await front.FindAsync("conversation-a", Cancel);
        front.Place("conversation-a", "http://worker-1:22434/");
        var again = await front.FindAsync("conversation-a", Cancel);

        Assert.Equal(default, first);
        Assert.Equal(new ConversationPlacement("http://worker-1:22434/", Unplaced: false), again);
        Assert.True(TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_front_without_redis_remembers_its_own_placements_but_never_calls_a_conversation_unplaced()
    {
        using var front = new LocalConversationPlacements(Options.Create(new ClaudeBackendOptions()));

        var before = await front.FindAsync("conversation-a", Cancel);
        front.Place("conversation-a", "http://worker-1:22434/");

        Assert.Equal(default, before);
        Assert.Equal(new ConversationPlacement("http://worker-1:22434/", Unplaced: false), await front.FindAsync("conversation-a", Cancel));
    }

    public ValueTask DisposeAsync() => _connections.DisposeAsync();
}
