using System.Net;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.AI;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>Anthropic's Messages API through the gateway: the official Anthropic SDK, with the real CLI behind it.</summary>
public sealed class AnthropicClientTests : IAsyncLifetime
{
    private FakeAnthropicServer _api = null!;
    private GatewayApp _app = null!;
    private AnthropicClient _client = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        RealCli.EnsureInstalled();
        _api = await FakeAnthropicServer.StartAsync("--reply", "agent", "--chunk-chars", "5");
        _app = GatewayApp.WithRealCli(_api, kestrel: true);
        using var http = _app.CreateClient();
        _client = new AnthropicClient { BaseUrl = http.BaseAddress!.ToString().TrimEnd('/'), ApiKey = "unused", MaxRetries = 0 };
    }

    [Fact]
    public async Task The_anthropic_sdk_gets_a_whole_message_with_the_cli_usage()
    {
        var message = await _client.Messages.Create(new MessageCreateParams
        {
            Model = "claude-sonnet:latest",
            MaxTokens = 256,
            System = "Be brief.",
            Messages = [new UserMessageParam("complete me")],
        }, Cancel);

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal("complete me", text.Text);
        Assert.True(message.StopReason == StopReason.EndTurn);
        Assert.True(message.Usage.InputTokens > 0);
        Assert.True(message.Usage.OutputTokens > 0);
        Assert.Contains(_api.MessageRequests()[^1].GetProperty("system").EnumerateArray(), b => b.GetProperty("text").GetString() == "Be brief.");
    }

    [Fact]
    public async Task The_anthropic_sdk_streams_the_api_event_sequence()
    {
        List<string> kinds = [];
        var text = "";
        await foreach (var streamed in _client.Messages.CreateStreaming(new MessageCreateParams
        {
            Model = "claude-sonnet:latest",
            MaxTokens = 256,
            Messages = [new UserMessageParam("streaming through the anthropic sdk")],
        }, Cancel))
        {
            kinds.Add(streamed.Match(
                start => "message_start",
                delta => "message_delta",
                stop => "message_stop",
                blockStart => "content_block_start",
                blockDelta =>
                {
                    text += blockDelta.Delta.TryPickText(out var piece) ? piece.Text : "";
                    return "content_block_delta";
                },
                blockStop => "content_block_stop"));
        }

        Assert.Equal("streaming through the anthropic sdk", text);
        Assert.Equal(["message_start", "content_block_start"], kinds.Take(2));
        Assert.True(kinds.Count(k => k == "content_block_delta") > 3);
        Assert.Equal(["content_block_stop", "message_delta", "message_stop"], kinds.TakeLast(3));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_function_invoking_agent_over_the_anthropic_sdk_runs_two_rounds_on_one_process(bool stream)
    {
        await TwoRoundAgent.RunAsync(_client.AsIChatClient("claude-sonnet:latest", 1024), stream, Cancel);

        var sessions = _api.MessageRequestsWithSession().TakeLast(3).Select(r => r.SessionId).ToList();
        Assert.Single(sessions.Distinct());
    }

    [Fact]
    public async Task The_model_list_comes_in_anthropic_shape_and_errors_in_anthropic_envelope()
    {
        var models = await _client.Models.List(cancellationToken: Cancel);
        var one = await _client.Models.Retrieve("claude-haiku:latest", cancellationToken: Cancel);
        using var http = _app.CreateClient();
        http.DefaultRequestHeaders.Add("anthropic-version", "2023-06-01");
        var bad = await http.PostAsync("/v1/messages", new StringContent("""{"model":"claude-sonnet:latest","messages":[{"role":"system","content":"x"}]}"""), Cancel);

        Assert.Contains("claude-sonnet:latest", models.Items.Select(m => m.ID));
        Assert.Equal("claude-haiku:latest", one.ID);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var error = JsonDocument.Parse(await bad.Content.ReadAsStringAsync(Cancel)).RootElement;
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("role 'system'", error.GetProperty("error").GetProperty("message").GetString());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _api.DisposeAsync();
    }
}
