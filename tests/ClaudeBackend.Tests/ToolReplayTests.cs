using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.Tests;

public sealed class ToolReplayTests
{
    [Fact]
    public void A_request_ending_in_results_is_asked_again_from_its_question_with_every_result_after_it()
    {
        ClaudeMessage[] messages =
        [
            new(ClaudeMessage.UserRole, "hi"),
            new(ClaudeMessage.AssistantRole, "hello"),
            new(ClaudeMessage.UserRole, "weather and time?"),
            new(ClaudeMessage.AssistantRole, "", ToolCalls: [new("a", "get_weather", """{"city":"Oslo","unit":"C"}"""), new("b", "now", "{}")]),
            new(ClaudeMessage.UserRole, "", ToolResults: [new("a", "sunny"), new("b", "noon")]),
            new(ClaudeMessage.AssistantRole, "", ToolCalls: [new("a", "get_weather", """{"city":"Rome"}""")]),
            new(ClaudeMessage.UserRole, "", ToolResults: [new("a", "rain")]),
        ];

        var (asked, replay) = ToolReplay.Of(messages)!.Value;
        List<string> sent = [];
        var server = new ClientToolServer([], sent.Add);
        PendingToolCall Made(string name, string arguments) =>
            new("request", JsonDocument.Parse("7").RootElement, new ClaudeToolCall("toolu_new", name, arguments));

        Assert.Equal(["hi", "hello", "weather and time?"], asked.Select(m => m.Text));
        Assert.Null(ToolReplay.Of(messages[..3]));
        // The same call made again, its arguments in another order: the client's result at once.
        Assert.True(replay.TryAnswer(Made("get_weather", """{"unit":"C","city":"Oslo"}"""), server));
        Assert.True(replay.TryAnswer(Made("get_weather", """{"city":"Rome"}"""), server));
        Assert.False(replay.TryAnswer(Made("get_weather", """{"city":"Lima"}"""), server));
        Assert.True(replay.HasAnswers);
        Assert.True(replay.TryAnswer(Made("now", "{}"), server));
        Assert.False(replay.HasAnswers);
        Assert.Equal(["sunny", "rain", "noon"], sent.Select(line => JsonDocument.Parse(line).RootElement
            .GetProperty("response").GetProperty("response").GetProperty("mcp_response").GetProperty("result").GetProperty("content")[0].GetProperty("text").GetString()));
    }
}
