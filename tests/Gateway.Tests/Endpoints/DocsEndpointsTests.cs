using System.Net;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;

namespace ClaudeProxy.Gateway.Tests.Endpoints;

public sealed class DocsEndpointsTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Docs_serve_an_interactive_page_with_its_script_from_the_gateway_itself()
    {
        await using var app = GatewayApp.WithFakeCli();
        var client = app.CreateClient();

        var page = await client.GetStringAsync("/docs/", Cancel);
        using var script = await client.GetAsync("/docs/scalar.js", Cancel);

        Assert.Contains("<script src=\"scalar.js\">", page, StringComparison.Ordinal);
        Assert.Contains("openapi/v1.json", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    [Fact]
    public async Task The_openapi_document_describes_every_public_endpoint()
    {
        var document = await DocumentAsync();

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToHashSet();
        string[] expected = ["/", "/api/version", "/api/tags", "/api/show", "/api/ps", "/api/chat", "/api/generate", "/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/models", "/v1/models/{id}", "/chat/completions", "/models", "/version"];
        Assert.Subset(paths, expected.ToHashSet());
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Its_schemas_are_the_wire_records_as_the_codecs_spell_them()
    {
        var document = await DocumentAsync();
        var schemas = document.GetProperty("components").GetProperty("schemas");

        // The chat route's body and answers point at the records the Ollama codec reads and writes, in snake_case.
        var chat = document.GetProperty("paths").GetProperty("/api/chat").GetProperty("post");
        Assert.Equal("#/components/schemas/OllamaChatRequest", chat.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString());
        Assert.Equal("#/components/schemas/OllamaChatChunk", chat.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/x-ndjson").GetProperty("schema").GetProperty("$ref").GetString());
        Assert.True(schemas.GetProperty("OllamaChatRequest").GetProperty("properties").TryGetProperty("keep_alive", out _));
        Assert.True(schemas.GetProperty("OllamaChatChunk").GetProperty("properties").TryGetProperty("done_reason", out _));
        Assert.True(schemas.GetProperty("OpenAiChatRequest").GetProperty("properties").TryGetProperty("stream_options", out _));
        // What a client may leave out is not required.
        Assert.False(schemas.GetProperty("OpenAiChatRequest").TryGetProperty("required", out _));
        // Each API's errors in its own envelope.
        var completions = document.GetProperty("paths").GetProperty("/v1/chat/completions").GetProperty("post");
        Assert.Equal("#/components/schemas/OpenAiErrorBody", completions.GetProperty("responses").GetProperty("404").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString());
        Assert.Contains("text/event-stream", completions.GetProperty("responses").GetProperty("200").GetProperty("content").EnumerateObject().Select(c => c.Name));
    }

    private static async Task<JsonElement> DocumentAsync()
    {
        await using var app = GatewayApp.WithFakeCli();
        return JsonDocument.Parse(await app.CreateClient().GetStringAsync("/openapi/v1.json", Cancel)).RootElement.Clone();
    }
}
