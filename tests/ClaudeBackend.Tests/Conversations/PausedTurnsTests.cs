using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

public sealed class PausedTurnsTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly ClaudeBackendOptions _settings = new() { ToolResultTimeout = TimeSpan.FromMinutes(10), MaxPausedTurns = 2 };

    private PausedTurns<FakeTurn> Create() => new(_time, Options.Create(_settings), NullLogger.Instance);

    private static ClaudeToolCall Call(string id) => new(id, "get_weather", "{}");

    [Fact]
    public void A_turn_is_found_by_its_calls_ids_for_its_own_key_only_and_only_once()
    {
        var paused = Create();
        var turn = new FakeTurn();
        paused.Add(turn, "alice", "scope", [Call("toolu_1"), Call("toolu_2")], "history");

        Assert.Null(paused.Take("bob", ["toolu_2"], "bob's history", null, out _));
        Assert.Same(turn, paused.Take("alice", ["toolu_2"], "other history", null, out _));
        Assert.Null(paused.Take("alice", ["toolu_1"], "history", null, out _));
        Assert.False(turn.Ended);
    }

    [Fact]
    public void A_client_that_drops_the_ids_finds_its_turn_by_the_history_up_to_the_calls()
    {
        var paused = Create();
        var turn = new FakeTurn();
        paused.Add(turn, null, "scope", [Call("toolu_1")], "history");

        Assert.Same(turn, paused.Take(null, ["call_1_0"], "history", null, out _));
    }

    [Fact]
    public void A_turn_of_a_conversation_with_an_id_is_found_in_its_session_when_neither_ids_nor_history_find_it()
    {
        var paused = Create();
        var session = new ClaudeCliSession(Guid.NewGuid(), "/tmp/conversation");
        var turn = new FakeTurn { Session = session };
        paused.Add(turn, null, "scope", [Call("toolu_1")], "unknown history");

        Assert.Null(paused.Take(null, ["call_1_0"], "the question alone", Guid.NewGuid(), out _));
        Assert.Same(turn, paused.Take(null, ["call_1_0"], "the question alone", session.Id, out _));
    }

    [Fact]
    public async Task A_turn_no_one_comes_back_to_is_ended_at_its_deadline_which_putting_it_back_does_not_move()
    {
        var paused = Create();
        var turn = new FakeTurn();
        paused.Add(turn, null, "scope", [Call("toolu_1")], "history");
        _time.Advance(TimeSpan.FromMinutes(6));
        Assert.Same(turn, paused.Take(null, ["toolu_1"], "history", null, out _));
        // Its results came incomplete: it waits on, for what is left of its ten minutes.
        paused.Add(turn, null, "scope", [Call("toolu_1")], "history");

        _time.Advance(TimeSpan.FromMinutes(3));
        Assert.False(turn.Ended);
        _time.Advance(TimeSpan.FromMinutes(1));
        await turn.WaitEndedAsync();
        Assert.Equal(0, paused.Count);
    }

    [Fact]
    public async Task Beyond_the_limit_the_turn_that_waited_longest_gives_way()
    {
        var paused = Create();
        FakeTurn[] turns = [new(), new(), new()];
        for (var i = 0; i < turns.Length; i++)
        {
            paused.Add(turns[i], null, "scope", [Call($"toolu_{i}")], $"history {i}");
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        await turns[0].WaitEndedAsync();
        Assert.False(turns[1].Ended);
        Assert.Equal(2, paused.Count);
        Assert.Null(paused.Take(null, ["toolu_0"], "history 0", null, out _));
    }

    [Fact]
    public void A_turn_comes_with_what_it_was_started_with_so_results_sent_otherwise_can_rebuild_instead()
    {
        var paused = Create();
        var turn = new FakeTurn();
        paused.Add(turn, null, "model A", [Call("toolu_1")], "history");

        Assert.Same(turn, paused.Take(null, ["toolu_1"], "history", null, out var scope));
        Assert.Equal("model A", scope);
    }

    [Fact]
    public async Task A_turn_put_back_gives_way_by_when_it_began_to_wait_not_by_when_it_was_put_back()
    {
        var paused = Create();
        FakeTurn first = new(), second = new(), third = new();
        paused.Add(first, null, "scope", [Call("toolu_1")], "history 1");
        _time.Advance(TimeSpan.FromSeconds(1));
        paused.Add(second, null, "scope", [Call("toolu_2")], "history 2");
        Assert.Same(first, paused.Take(null, ["toolu_1"], "history 1", null, out _));
        paused.Add(first, null, "scope", [Call("toolu_1")], "history 1");

        paused.Add(third, null, "scope", [Call("toolu_3")], "history 3");

        await first.WaitEndedAsync();
        Assert.False(second.Ended);
    }

    [Fact]
    public async Task A_later_turn_of_the_same_session_ends_the_one_that_waits_in_it()
    {
        var paused = Create();
        var turn = new FakeTurn { Session = new ClaudeCliSession(Guid.NewGuid(), "/tmp/work") };
        paused.Add(turn, null, "scope", [Call("toolu_1")], "history");

        await paused.EndSessionAsync(turn.Session.Id);

        Assert.True(turn.Ended);
        Assert.Null(paused.Take(null, ["toolu_1"], "history", null, out _));
    }

    private sealed class FakeTurn : IPausedTurn
    {
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ClaudeCliSession? Session { get; init; }

        public long? PausedAt { get; set; }

        public bool Ended => _ended.Task.IsCompleted;

        public Task WaitEndedAsync() => _ended.Task.WaitAsync(TimeSpan.FromSeconds(5));

        public ValueTask EndPausedAsync()
        {
            _ended.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }
}
