using ClaudeProxy.Gateway.Tests.Infrastructure;
using OllamaSharp;
using OllamaSharp.Models.Chat;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

public sealed class OllamaSharpBothBackendsTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task One_ollamasharp_client_chats_with_a_claude_model_and_an_ollama_model()
    {
        using var ollama = FakeOllama.Start();
        await using var app = GatewayApp.WithFakeCli(kestrel: true, configure: GatewayApp.WithOllama(ollama.Url));
        using var http = app.CreateClient();
        var client = new OllamaApiClient(http.BaseAddress!);

        var models = (await client.ListLocalModelsAsync(Cancel)).Select(m => m.Name).ToList();
        var claude = await Chat(client, "claude-sonnet:latest");
        var llama = await Chat(client, "llama3.2:latest");

        Assert.Contains("claude-sonnet:latest", models);
        Assert.Contains("llama3.2:latest", models);
        Assert.Equal("fake answer", claude);
        Assert.Equal("The sky is blue.", llama);
    }

    private static async Task<string> Chat(OllamaApiClient client, string model)
    {
        var text = "";
        await foreach (var chunk in client.ChatAsync(new ChatRequest { Model = model, Messages = [new Message(ChatRole.User, "why is the sky blue?")] }, Cancel))
        {
            text += chunk?.Message.Content;
        }

        return text;
    }
}
