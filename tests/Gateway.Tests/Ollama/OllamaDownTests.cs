using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Ollama;

/// <summary>An Ollama that is down, or none at all: Claude keeps working and Ollama traffic gets clear errors.</summary>
public sealed class OllamaDownTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>A loopback port nothing listens on.</summary>
    private static string ClosedPortUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
    }

    [Fact]
    public async Task A_down_ollama_gives_clear_errors_in_each_dialect_while_claude_answers()
    {
        await using var app = GatewayApp.WithFakeCli(configure: GatewayApp.WithOllama(ClosedPortUrl()));
        var client = app.CreateClient();
        var clock = Stopwatch.StartNew();

        using var ollamaChat = await client.PostAsync("/api/chat", Json("""{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        using var openAiChat = await client.PostAsync("/v1/chat/completions", Json("""{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}"""), Cancel);
        var tags = (await client.GetFromJsonAsync<JsonElement>("/api/tags", Cancel)).GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString());
        using var claude = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Contains((int)ollamaChat.StatusCode, new[] { 502, 503 });
        Assert.StartsWith("Ollama", (await ollamaChat.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains((int)openAiChat.StatusCode, new[] { 502, 503 });
        Assert.StartsWith("Ollama", (await openAiChat.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"], tags);
        Assert.Equal(HttpStatusCode.OK, claude.StatusCode);
    }

    [Fact]
    public async Task Without_an_ollama_its_endpoints_say_so()
    {
        await using var app = GatewayApp.WithFakeCli();
        var client = app.CreateClient();

        using var blob = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/api/blobs/sha256:abc"), Cancel);
        using var status = await client.GetAsync("/api/status", Cancel);
        using var embed = await client.PostAsync("/api/embed", Json("""{"model":"all-minilm","input":"x"}"""), Cancel);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, blob.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status.StatusCode);
        Assert.Equal("No Ollama is configured (set OLLAMA_URL).", (await status.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.NotFound, embed.StatusCode);
        Assert.Equal("model 'all-minilm' not found", (await embed.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
    }
}
