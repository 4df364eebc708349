using System.ClientModel;
using System.Diagnostics;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using OllamaSharp;
using OllamaSharp.Models.Chat;
using OpenAI;
using OpenAI.Chat;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>The client libraries people already use, pointed at the gateway, with the real CLI behind it.</summary>
public sealed class RealClientTests : IAsyncLifetime
{
    private FakeAnthropicServer _api = null!;
    private GatewayApp _app = null!;
    private Uri _baseAddress = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _api = await FakeAnthropicServer.StartAsync("--reply", "echo", "--chunk-chars", "5");
        _app = GatewayApp.WithRealCli(_api, kestrel: true);
        using var client = _app.CreateClient();
        _baseAddress = client.BaseAddress!;
    }

    [Fact]
    public async Task OllamaSharp_lists_shows_and_chats_streaming_and_not()
    {
        var ollama = new OllamaApiClient(_baseAddress);

        Assert.True(await ollama.IsRunningAsync(Cancel));
        Assert.True(Version.Parse(await ollama.GetVersionAsync(Cancel)) >= new Version(0, 6, 4));
        var models = (await ollama.ListLocalModelsAsync(Cancel)).Select(m => m.Name).ToList();
        Assert.Contains("claude-sonnet:latest", models);
        var show = await ollama.ShowModelAsync("claude-sonnet:latest", Cancel);
        Assert.Contains("completion", show.Capabilities!);

        List<ChatResponseStream?> streamed = [];
        await foreach (var chunk in ollama.ChatAsync(new ChatRequest { Model = "claude-sonnet:latest", Messages = [new Message(ChatRole.User, "streaming through OllamaSharp")] }, Cancel))
        {
            streamed.Add(chunk);
        }

        Assert.True(streamed.Count > 2);
        Assert.Equal("streaming through OllamaSharp", string.Concat(streamed.Select(c => c?.Message.Content)));
        var done = Assert.IsType<ChatDoneResponseStream>(streamed[^1]);
        Assert.True(done.EvalCount > 0);
        Assert.True(done.PromptEvalCount > 0);
        Assert.True(done.TotalDuration > 0);

        var single = await ollama.ChatAsync(new ChatRequest { Model = "claude-sonnet:latest", Stream = false, Messages = [new Message(ChatRole.User, "not streamed")] }, Cancel).StreamToEndAsync();
        Assert.Equal("not streamed", single?.Message.Content);
    }

    [Fact]
    public async Task OllamaSharp_generates()
    {
        var ollama = new OllamaApiClient(_baseAddress) { SelectedModel = "claude-haiku:latest" };
        var text = "";

        await foreach (var chunk in ollama.GenerateAsync("generate this", cancellationToken: Cancel))
        {
            text += chunk?.Response;
        }

        Assert.Equal("generate this", text);
    }

    [Fact]
    public async Task The_openai_sdk_completes_streams_and_reads_usage()
    {
        var chat = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_baseAddress, "/v1") });

        ChatCompletion completion = await chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("complete me")], cancellationToken: Cancel);
        Assert.Equal("complete me", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.True(completion.Usage.InputTokenCount > 0);

        var text = "";
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream me please")], cancellationToken: Cancel))
        {
            text += string.Concat(update.ContentUpdate.Select(p => p.Text));
            usage ??= update.Usage;
        }

        Assert.Equal("stream me please", text);
        Assert.NotNull(usage);
        Assert.True(usage.OutputTokenCount > 0);
    }

    [Fact]
    public async Task The_openai_sdk_raises_a_clear_error_for_an_unknown_model()
    {
        var chat = new ChatClient("gpt-unknown", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_baseAddress, "/v1") });

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("x")], cancellationToken: Cancel));

        Assert.Equal(404, error.Status);
        Assert.Contains("gpt-unknown", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_readme_curl_command_streams_an_answer()
    {
        var start = new ProcessStartInfo("curl") { RedirectStandardOutput = true };
        foreach (var argument in (string[])["-sN", new Uri(_baseAddress, "/api/chat").ToString(), "-d", """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"hi from curl"}]}"""])
        {
            start.ArgumentList.Add(argument);
        }

        using var curl = Process.Start(start)!;
        var output = await curl.StandardOutput.ReadToEndAsync(Cancel);
        await curl.WaitForExitAsync(Cancel);

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(0, curl.ExitCode);
        Assert.True(lines.Count > 2);
        Assert.Equal("hi from curl", string.Concat(lines.Select(l => l.GetProperty("message").GetProperty("content").GetString())));
        Assert.True(lines[^1].GetProperty("done").GetBoolean());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _api.DisposeAsync();
    }
}
