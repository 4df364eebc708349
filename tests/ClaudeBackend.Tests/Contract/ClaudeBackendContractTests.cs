using System.Net;
using System.Text;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.ClaudeBackend.Tests.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Tests.Contract;

public sealed class ClaudeBackendContractTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_turns_events_cross_a_socket_as_ndjson_and_arrive_as_they_were()
    {
        var sent = Decode("thinking_block_stream_json_partial");

        var arrived = await ReadAllAsync(await ReceiveAsync(new ClaudeTurnContent(new Replay(sent))));

        Assert.Equal(sent, arrived);
        Assert.IsType<TurnCompleted>(arrived[^1]);
    }

    [Fact]
    public async Task A_subscriptions_rate_limit_crosses_a_socket_with_the_answer()
    {
        var sent = RecordedTurns.Decode(new ClaudeStreamDecoder(), TestSupport.Fixtures.Lines("rate_limits", "subscription_warning.stdout.txt"));

        var arrived = await ReadAllAsync(await ReceiveAsync(new ClaudeTurnContent(new Replay(sent))));

        Assert.Equal(sent, arrived);
        Assert.Single(arrived.OfType<RateLimitReported>());
    }

    [Fact]
    public async Task An_event_of_a_kind_this_gateway_does_not_know_is_skipped_not_taken_for_a_broken_stream()
    {
        var sent = Decode("print_stream_json_partial");
        var lines = Encoding.UTF8.GetString(await new ClaudeTurnContent(new Replay(sent)).ReadAsByteArrayAsync(Cancel)).Split('\n');
        // A newer worker's event, ahead of the outcome.
        var withNewKind = string.Join('\n', [.. lines[..^2], """{"type":"kind_of_a_later_version","value":1}""", .. lines[^2..]]);
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(withNewKind) };

        var arrived = await ReadAllAsync(await ClaudeBackendContract.ReadEventsAsync(response, Cancel));

        Assert.Equal(sent, arrived);
    }

    [Fact]
    public async Task A_stream_that_stops_before_the_outcome_ends_with_a_failure()
    {
        var sent = Decode("print_stream_json_partial").Where(e => e is not TurnCompleted).ToList();

        var arrived = await ReadAllAsync(await ReceiveAsync(new ClaudeTurnContent(new Replay(sent))));

        Assert.Equal(sent, arrived[..^1]);
        Assert.Contains("ended before the turn was complete", Assert.IsType<TurnFailed>(arrived[^1]).Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_cut_off_mid_line_ends_as_one_that_stopped_before_the_outcome()
    {
        var sent = Decode("print_stream_json_partial");
        var bytes = await new ClaudeTurnContent(new Replay(sent)).ReadAsByteArrayAsync(Cancel);
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(bytes[..^20]) };

        var arrived = await ReadAllAsync(await ClaudeBackendContract.ReadEventsAsync(response, Cancel));

        Assert.Equal(sent[..^1], arrived[..^1]);
        Assert.Contains("ended before the turn was complete", Assert.IsType<TurnFailed>(arrived[^1]).Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_error_status_arrives_as_the_failure_it_names()
    {
        var error = new ClaudeBackendError(ClaudeErrorKind.RateLimited, "slow down", RetryAfterSeconds: 3);
        using var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests) { Content = ClaudeBackendContract.ErrorContent(error) };

        await using var events = await ClaudeBackendContract.ReadEventsAsync(response, Cancel);

        Assert.Equal(error, events.FailedBeforeAnswer);
        Assert.Equal([new TurnFailed(error)], await ReadAllAsync(events));
    }

    [Fact]
    public async Task In_process_the_events_are_handed_over_as_they_are()
    {
        var turn = new Replay(Decode("print_stream_json_partial"));
        using var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ClaudeTurnContent(turn) };

        Assert.Same(turn, await ClaudeBackendContract.ReadEventsAsync(response, Cancel));
    }

    /// <summary>The answer as a worker behind a socket sends it: only its bytes.</summary>
    private static async Task<IClaudeTurnEvents> ReceiveAsync(ClaudeTurnContent content)
    {
        var bytes = await content.ReadAsByteArrayAsync(Cancel);
        var wire = new ByteArrayContent(bytes);
        Assert.Equal(ClaudeBackendContract.EventsMediaType, content.Headers.ContentType?.MediaType);
        Assert.All(Encoding.UTF8.GetString(bytes).Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.StartsWith("{\"type\":", line, StringComparison.Ordinal));
        return await ClaudeBackendContract.ReadEventsAsync(new HttpResponseMessage(HttpStatusCode.OK) { Content = wire }, Cancel);
    }

    private static List<ClaudeStreamEvent> Decode(string fixture) => RecordedTurns.Decode(fixture);

    private static async Task<List<ClaudeStreamEvent>> ReadAllAsync(IClaudeTurnEvents events)
    {
        List<ClaudeStreamEvent> all = [];
        List<ClaudeStreamEvent> batch = [];
        while (await events.ReadAsync(batch, Cancel))
        {
            all.AddRange(batch);
        }

        return all;
    }

    /// <summary>Events known in advance, one batch each.</summary>
    private sealed class Replay(List<ClaudeStreamEvent> events) : IClaudeTurnEvents
    {
        private int _next;

        public ClaudeBackendError? FailedBeforeAnswer => null;

        public ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> batch, CancellationToken cancellationToken)
        {
            batch.Clear();
            if (_next < events.Count)
            {
                batch.Add(events[_next++]);
            }

            return ValueTask.FromResult(batch.Count > 0);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
