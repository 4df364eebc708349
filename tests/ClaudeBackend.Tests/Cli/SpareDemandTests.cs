using ClaudeProxy.ClaudeBackend.Cli;
using Microsoft.Extensions.Time.Testing;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class SpareDemandTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly SpareDemand _demand;

    public SpareDemandTests() => _demand = new SpareDemand(_time, TimeSpan.FromMinutes(5));

    [Fact]
    public void A_model_nobody_used_calls_for_no_spare() => Assert.Equal(0, _demand.Peak("sonnet"));

    [Fact]
    public void A_chat_and_its_title_request_call_for_two_spares()
    {
        _demand.Record("sonnet");
        _time.Advance(TimeSpan.FromSeconds(2));
        _demand.Record("sonnet");

        Assert.Equal(2, _demand.Peak("sonnet"));
        Assert.Equal(0, _demand.Peak("haiku"));
    }

    [Fact]
    public void Chats_spread_out_call_for_one_spare_however_many_there_are()
    {
        for (var i = 0; i < 6; i++)
        {
            _demand.Record("sonnet");
            _time.Advance(TimeSpan.FromSeconds(30));
        }

        Assert.Equal(1, _demand.Peak("sonnet"));
    }

    [Fact]
    public void The_largest_burst_of_the_window_counts_until_it_falls_out_of_it()
    {
        _demand.Record("sonnet");
        _demand.Record("sonnet");
        _demand.Record("sonnet");
        _time.Advance(TimeSpan.FromMinutes(2));
        _demand.Record("sonnet");

        Assert.Equal(3, _demand.Peak("sonnet"));
        _time.Advance(TimeSpan.FromMinutes(3).Add(TimeSpan.FromSeconds(1)));
        Assert.Equal(1, _demand.Peak("sonnet"));
        _time.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(0, _demand.Peak("sonnet"));
    }
}
