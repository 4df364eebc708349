using System.Text;
using ClaudeProxy.Gateway.Workers;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.Tests.Workers;

public sealed class ConversationHashPolicyTests
{
    private readonly WorkerLoads _loads = new();
    private readonly ConversationHashPolicy _policy;

    public ConversationHashPolicyTests() => _policy = new ConversationHashPolicy(_loads);

    private static DestinationState Worker(int port) =>
        new($"worker-{port}", new DestinationModel(new DestinationConfig { Address = $"http://10.0.0.1:{port}/" }));

    private DestinationState? Pick(string? key, IReadOnlyList<DestinationState> workers) =>
        Pick(key is null ? null : new ConversationAffinity(key), workers);

    private DestinationState? Pick(ConversationAffinity? affinity, IReadOnlyList<DestinationState> workers)
    {
        var context = new DefaultHttpContext();
        if (affinity is not null)
        {
            context.Features.Set(affinity);
        }

        return _policy.PickDestination(context, null!, workers);
    }

    [Fact]
    public void A_conversation_stays_on_its_worker_and_only_the_conversations_of_a_worker_that_leaves_move()
    {
        List<DestinationState> workers = [Worker(1), Worker(2), Worker(3)];
        var keys = Enumerable.Range(0, 300).Select(i => $"conversation {i}").ToList();

        var before = keys.ToDictionary(k => k, k => Pick(k, workers)!.Model.Config.Address);
        var again = keys.ToDictionary(k => k, k => Pick(k, [.. Enumerable.Reverse(workers)])!.Model.Config.Address);
        var withoutTwo = keys.ToDictionary(k => k, k => Pick(k, [workers[0], workers[2]])!.Model.Config.Address);

        Assert.Equal(before, again);
        Assert.All(keys.Where(k => before[k] != workers[1].Model.Config.Address), k => Assert.Equal(before[k], withoutTwo[k]));
        // Spread over all three: none gets fewer than a sixth.
        Assert.All(before.Values.GroupBy(a => a), g => Assert.True(g.Count() > 50, $"{g.Key}: {g.Count()}"));
    }

    [Fact]
    public void A_request_of_no_conversation_goes_to_the_least_busy_worker()
    {
        List<DestinationState> workers = [Worker(1), Worker(2)];
        workers[0].ConcurrentRequestCount = 3;
        workers[1].ConcurrentRequestCount = 1;

        Assert.Same(workers[1], Pick((string?)null, workers));
        Assert.Null(Pick("x", []));
    }

    [Fact]
    public void A_conversation_goes_to_the_worker_it_is_on_while_that_one_is_healthy_and_else_by_its_hash()
    {
        List<DestinationState> workers = [Worker(1), Worker(2), Worker(3)];
        var byHash = Pick("conversation", workers)!;
        var other = workers.First(w => w != byHash);
        other.ConcurrentRequestCount = 5;

        var onItsWorker = Pick(new ConversationAffinity("conversation") { Worker = other.Model.Config.Address }, workers);
        var itsWorkerGone = Pick(new ConversationAffinity("conversation") { Worker = other.Model.Config.Address }, [.. workers.Where(w => w != other)]);
        var newButPlaced = Pick(new ConversationAffinity("conversation", IsNew: true) { Worker = other.Model.Config.Address }, workers);

        Assert.Same(other, onItsWorker);
        Assert.Same(byHash, itsWorkerGone);
        // A chat that opens like one that ran (a regenerated first answer) goes where that one is.
        Assert.Same(other, newButPlaced);
    }

    [Fact]
    public void A_new_chat_goes_to_the_least_busy_worker_and_a_conversation_nobody_placed_by_its_hash()
    {
        List<DestinationState> workers = [Worker(1), Worker(2), Worker(3)];
        var byHash = Pick("conversation", workers)!;
        byHash.ConcurrentRequestCount = 2;
        var idle = workers.First(w => w != byHash);
        foreach (var busy in workers.Where(w => w != byHash && w != idle))
        {
            busy.ConcurrentRequestCount = 1;
        }

        Assert.Same(idle, Pick(new ConversationAffinity("conversation", IsNew: true), workers));
        Assert.Same(byHash, Pick(new ConversationAffinity("conversation"), workers));
    }

    [Fact]
    public void A_new_chat_goes_to_the_worker_with_the_fewest_turns_of_any_front_as_the_workers_last_reported_them()
    {
        List<DestinationState> workers = [Worker(1), Worker(2), Worker(3)];
        var byHash = Pick(new ConversationAffinity("chat"), workers)!;
        var (second, third) = (workers.First(w => w != byHash), workers.Last(w => w != byHash));
        // Other fronts' turns, which this front sees only in what the workers say.
        Report(byHash, "2");
        Report(second, "1");
        // This front's own turns on the third: one when it reported, three now.
        third.ConcurrentRequestCount = 1;
        Report(third, "1");
        third.ConcurrentRequestCount = 3;

        var fewest = Pick(new ConversationAffinity("chat", IsNew: true), workers);
        // This front starts two on the second: with the other front's one, three.
        second.ConcurrentRequestCount = 2;
        var thenFewest = Pick(new ConversationAffinity("chat", IsNew: true), workers);
        _loads.Report(byHash, response: null);
        var afterAProbeWithoutAnswer = _loads.Of(byHash);
        Report(byHash, null);

        Assert.Same(second, fewest);
        Assert.Equal(3, _loads.Of(second));
        Assert.Equal(3, _loads.Of(third));
        Assert.Same(byHash, thenFewest);
        // A probe that got no answer (a worker too busy to answer in time) leaves its last report.
        Assert.Equal(2, afterAProbeWithoutAnswer);
        // A worker whose answer says nothing (an earlier version) counts only this front's turns.
        Assert.Equal(0, _loads.Of(byHash));
    }

    private void Report(DestinationState worker, string? turns)
    {
        using var answer = new HttpResponseMessage();
        if (turns is not null)
        {
            answer.Headers.Add(WorkerLoads.Header, turns);
        }

        _loads.Report(worker, answer);
    }

    [Fact]
    public void New_chats_one_after_another_spread_over_the_idle_workers()
    {
        List<DestinationState> workers = [Worker(1), Worker(2), Worker(3)];

        var picks = Enumerable.Range(0, 300).Select(i => Pick(new ConversationAffinity($"chat {i}", IsNew: true), workers)!.Model.Config.Address);
        var requests = Enumerable.Range(0, 300).Select(_ => Pick((string?)null, workers)!.Model.Config.Address);

        Assert.All(picks.GroupBy(a => a), g => Assert.True(g.Count() > 50, $"{g.Key}: {g.Count()}"));
        Assert.Equal(3, requests.Distinct().Count());
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"a"}]}""", true)]
    [InlineData("""{"model":"m","messages":[{"role":"developer","content":"S"},{"role":"user","content":"a"},{"role":"user","content":"b"}]}""", true)]
    [InlineData("""{"model":"m","instructions":"S","input":"hello"}""", true)]
    [InlineData("""{"model":"m","input":[{"role":"user","content":"hello"}]}""", true)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}""", false)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"a"},{"role":"tool","content":"r"}]}""", false)]
    [InlineData("""{"model":"m","input":[{"role":"user","content":"hello"},{"type":"function_call_output","call_id":"c","output":"x"}]}""", false)]
    [InlineData("""{"model":"m","previous_response_id":"resp_1","input":"and then?"}""", false)]
    [InlineData("""{"model":"m","id":"c1","messages":[{"role":"user","content":"a"}]}""", false)]
    public void A_chat_is_new_when_its_history_only_opens_it(string body, bool isNew)
    {
        Assert.Equal(isNew, ConversationAffinity.Of(Encoding.UTF8.GetBytes(body), owner: null)!.IsNew);
    }

    [Theory]
    [InlineData("""{"model":"m","id":"c1","messages":[{"role":"user","content":"a"}]}""", "alice", "id\nalice\nc1")]
    [InlineData("""{"model":"m","user":"u1","messages":[{"role":"user","content":"a"}]}""", null, "id\n\nu1")]
    [InlineData("""{"model":"m","user":null,"id":" ","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}""", null, "history\n\nm\n\na")]
    [InlineData("""{"model":"m","system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]}]}""", null, "history\n\nm\nS\na")]
    [InlineData("""{"model":"m","system":"S","messages":[{"role":"user","content":"a"}]}""", null, "history\n\nm\nS\na")]
    [InlineData("""{"model":"m","instructions":"be brief","input":"hello"}""", null, "history\n\nm\nbe brief\nhello")]
    [InlineData("""{"model":"m","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hello"}]},{"type":"function_call_output","call_id":"c","output":"x"}]}""", null, "history\n\nm\nbe brief\nhello")]
    [InlineData("""{"model":"m","prompt":"one-off"}""", null, null)]
    [InlineData("""not json""", null, null)]
    public void The_key_is_the_conversations_id_or_its_first_user_message_as_every_turn_sends_it(string body, string? owner, string? key)
    {
        Assert.Equal(key, ConversationAffinity.Of(Encoding.UTF8.GetBytes(body), owner)?.Key);
    }
}
