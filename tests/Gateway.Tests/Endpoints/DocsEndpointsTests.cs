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
        await using var app = GatewayApp.WithFakeCli();

        var document = JsonDocument.Parse(await app.CreateClient().GetStringAsync("/openapi/v1.json", Cancel)).RootElement;

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToHashSet();
        string[] expected = ["/", "/api/version", "/api/tags", "/api/show", "/api/ps", "/api/chat", "/api/generate", "/v1/chat/completions", "/v1/models", "/v1/models/{id}", "/chat/completions", "/models", "/version"];
        Assert.Subset(paths, expected.ToHashSet());
        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
    }
}
