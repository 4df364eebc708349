using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.AI;
using OpenAI;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>OpenAI's Responses API through the gateway: the OpenAI SDK's Responses client, with the real CLI behind it.</summary>
public sealed class ResponsesClientTests : IAsyncLifetime
{
    private FakeAnthropicServer _api = null!;
    private FakeOllama _ollama = null!;
    private GatewayApp _app = null!;
    private IChatClient _responses = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        RealCli.EnsureInstalled();
        _api = await FakeAnthropicServer.StartAsync("--reply", "agent", "--chunk-chars", "5");
        _ollama = FakeOllama.Start();
        _app = GatewayApp.WithRealCli(_api, kestrel: true, configure: GatewayApp.WithOllama(_ollama.Url));
        using var http = _app.CreateClient();
#pragma warning disable OPENAI001 // The Responses client is marked experimental in the OpenAI SDK.
        _responses = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1") })
            .GetResponsesClient().AsIChatClient("claude-sonnet:latest");
#pragma warning restore OPENAI001
    }

    [Fact]
    public async Task The_responses_client_gets_answers_whole_and_streamed()
    {
        var whole = await _responses.GetResponseAsync("complete me", cancellationToken: Cancel);
        var streamed = "";
        await foreach (var update in _responses.GetStreamingResponseAsync("streaming through responses", cancellationToken: Cancel))
        {
            streamed += update.Text;
        }

        Assert.Equal("complete me", whole.Text);
        Assert.True(whole.Usage?.InputTokenCount > 0);
        Assert.StartsWith("resp_", whole.ResponseId);
        Assert.Equal("streaming through responses", streamed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_function_invoking_agent_goes_on_from_its_previous_response_on_one_process(bool stream)
    {
        await TwoRoundAgent.RunAsync(_responses, stream, Cancel);

        Assert.Single(_api.MessageRequestsWithSession().TakeLast(3).Select(r => r.SessionId).Distinct());
    }

    [Fact]
    public async Task An_unknown_previous_response_gets_a_400_and_another_model_goes_to_ollama()
    {
        _ollama.Server.Given(Request.Create().WithPath("/v1/responses").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/json").WithBody("""{"object":"response","id":"resp_ollama","status":"completed","output":[]}"""));
        using var http = _app.CreateClient();

        var unknown = await http.PostAsJsonAsync("/v1/responses", new { model = "claude-sonnet:latest", input = "hi", previous_response_id = "resp_nobody" }, Cancel);
        var local = await http.PostAsJsonAsync("/v1/responses", new { model = "llama3.2:latest", input = "hi" }, Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("resp_nobody", (await unknown.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("resp_ollama", (await local.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("id").GetString());
        Assert.Equal("llama3.2:latest", JsonDocument.Parse(_ollama.LastRequestTo("/v1/responses").Body!).RootElement.GetProperty("model").GetString());
    }

    public async ValueTask DisposeAsync()
    {
        _responses.Dispose();
        await _app.DisposeAsync();
        _ollama.Dispose();
        await _api.DisposeAsync();
    }
}
