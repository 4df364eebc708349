using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
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
    private async Task<RedisConversationPlacements> FrontAsync(string redis, bool connected = true) =>
        (await FrontWithConnectionAsync(redis, connected)).Front;

    /// <summary>A front, and its connection, through which a test writes to Redis what another front would.</summary>
    private async Task<(RedisConversationPlacements Front, SharedRedis Connection)> FrontWithConnectionAsync(string redis, bool connected = true)
    {
        var (connection, options) = await _connections.ConnectAsync(redis, connected);
        return (new(connection, options, TimeProvider.System, NullLogger<RedisConversationPlacements>.Instance), connection);
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

        Assert.Equal(new ConversationPlacement(null, Unplaced: true), unplaced);
        Assert.Equal(new ConversationPlacement("http://worker-1:22434/", Unplaced: false), placed);
        // The other front finds it once the write lands (it is not awaited: a placement never holds a turn back).
        await UntilRedisSaysAsync(other, "conversation-a", "http://worker-1:22434/");
    }

    [Fact]
    public async Task A_front_that_hears_moves_finds_its_own_placements_without_asking_redis()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        using var front = await FrontAsync(redis.Configuration);
        await front.HearMovesAsync();

        front.Place("conversation-a", "http://worker-1:22434/");
        var own = front.FindAsync("conversation-a", Cancel);

        // Answered from this front's memory, without a round trip.
        Assert.True(own.IsCompletedSuccessfully);
        Assert.Equal("http://worker-1:22434/", (await own).Worker);
    }

    [Fact]
    public async Task A_front_forgets_its_placement_of_a_conversation_another_front_moved_and_finds_the_new_one()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        using var one = await FrontAsync(redis.Configuration);
        using var other = await FrontAsync(redis.Configuration);
        await Task.WhenAll(one.HearMovesAsync(), other.HearMovesAsync());
        one.Place("conversation-a", "http://worker-1:22434/");
        await UntilRedisSaysAsync(other, "conversation-a", "http://worker-1:22434/");

        // The other front moves it (its worker was down, as that front saw it).
        other.Place("conversation-a", "http://worker-2:22434/");
        string? heard = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(5); heard != "http://worker-2:22434/" && DateTime.UtcNow < deadline; await Task.Delay(10, Cancel))
        {
            heard = (await one.FindAsync("conversation-a", Cancel)).Worker;
        }

        Assert.Equal("http://worker-2:22434/", heard);
    }

    [Fact]
    public async Task A_front_whose_subscription_dropped_forgets_its_own_placements_for_it_may_have_missed_moves()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var (front, connection) = await FrontWithConnectionAsync(redis.Configuration);
        using var one = front;
        // A front that places nothing: it reads Redis, where each front's writes land in their own time.
        using var reader = await FrontAsync(redis.Configuration);
        await one.HearMovesAsync();
        one.Place("conversation-a", "http://worker-1:22434/");
        one.Place("probe-before", "http://worker-1:22434/");
        await UntilRedisSaysAsync(reader, "conversation-a", "http://worker-1:22434/");
        // Another front's move whose message this front never got, as one sent while its subscription was down.
        await (await connection.DatabaseAsync(Cancel)).StringSetAsync(RedisConversationPlacements.KeyOf("conversation-a"), "http://worker-2:22434/");
        var before = await one.FindAsync("conversation-a", Cancel);

        await redis.DropSubscribersAsync();
        // The drop is heard (a placement from before it is no longer answered from memory), then the return (a new one is).
        await UntilAsync(() => !one.FindAsync("probe-before", Cancel).IsCompletedSuccessfully);
        var probes = 0;
        await UntilAsync(() =>
        {
            var probe = $"probe-{++probes}";
            one.Place(probe, "http://worker-1:22434/");
            return one.FindAsync(probe, Cancel).IsCompletedSuccessfully;
        });
        var after = await one.FindAsync("conversation-a", Cancel);

        Assert.Equal("http://worker-1:22434/", before.Worker);
        Assert.Equal("http://worker-2:22434/", after.Worker);
    }

    [Fact]
    public async Task What_a_front_placed_before_it_heard_moves_is_looked_up_in_redis_once_it_does()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        var (front, connection) = await FrontWithConnectionAsync(redis.Configuration);
        using var one = front;
        using var reader = await FrontAsync(redis.Configuration);

        one.Place("conversation-a", "http://worker-1:22434/");
        await UntilRedisSaysAsync(reader, "conversation-a", "http://worker-1:22434/");
        // Moved by another front before this one subscribed: it could not hear it.
        await (await connection.DatabaseAsync(Cancel)).StringSetAsync(RedisConversationPlacements.KeyOf("conversation-a"), "http://worker-2:22434/");
        await one.HearMovesAsync();

        Assert.Equal("http://worker-2:22434/", (await one.FindAsync("conversation-a", Cancel)).Worker);
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never held");
            await Task.Delay(10, Cancel);
        }
    }

    private static async Task UntilRedisSaysAsync(RedisConversationPlacements reader, string conversation, string worker)
    {
        string? found = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(5); found != worker && DateTime.UtcNow < deadline; await Task.Delay(10, Cancel))
        {
            found = (await reader.FindAsync(conversation, Cancel)).Worker;
        }

        Assert.Equal(worker, found);
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
