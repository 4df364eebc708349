using System.ComponentModel;
using Microsoft.Extensions.AI;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>
/// The script the tool tests play with the fake API's <c>agent</c> mode: a round of two parallel calls (<c>get_weather</c>,
/// <c>get_time</c>), then one more call, then an answer that lists every result the model got.
/// </summary>
internal static class TwoRoundAgent
{
    public const string Prompt = "What is the weather?\ncall:get_weather:{\"city\":\"Paris\"} ; call:get_time:{\"zone\":\"CET\"}\ncall:get_weather:{\"city\":\"Rome\"}";

    /// <summary>
    /// Runs <see cref="Prompt"/> through <paramref name="inner"/> as a function-invoking agent (<c>UseFunctionInvocation()</c>)
    /// with real functions, and checks that each ran with the script's arguments and that the answer has their results.
    /// </summary>
    public static async Task RunAsync(IChatClient inner, bool stream, CancellationToken cancellationToken)
    {
        List<string> invoked = [];
        var weather = AIFunctionFactory.Create(([Description("the city")] string city) => { invoked.Add(city); return $"sunny in {city}"; }, "get_weather", "weather for a city");
        var time = AIFunctionFactory.Create(([Description("the time zone")] string zone) => { invoked.Add(zone); return $"12:00 in {zone}"; }, "get_time", "time in a zone");
        using var agent = new ChatClientBuilder(inner).UseFunctionInvocation().Build();
        var options = new ChatOptions { Tools = [weather, time] };

        var response = stream
            ? await agent.GetStreamingResponseAsync(Prompt, options, cancellationToken).ToChatResponseAsync(cancellationToken)
            : await agent.GetResponseAsync(Prompt, options, cancellationToken);

        Assert.Equal(["CET", "Paris", "Rome"], invoked.Order());
        Assert.StartsWith("done after 2 rounds", response.Text);
        Assert.Contains("sunny in Rome", response.Text);
    }
}
