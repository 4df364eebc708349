using Scalar.AspNetCore;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary>
/// <c>/docs</c>: interactive API docs. The OpenAPI document is written by hand, because most of the API is YARP
/// routes that endpoint metadata cannot describe.
/// </summary>
internal static class DocsEndpoints
{
    public const string DocumentPath = "/openapi/v1.json";

    public static IEndpointRouteBuilder MapDocs(this IEndpointRouteBuilder app)
    {
        var document = ReadDocument();
        app.MapGet(DocumentPath, () => new BodyResult(document)).ExcludeFromDescription();
        app.MapScalarApiReference("/docs", options => options
            .WithTitle("ClaudeProxy API")
            .WithOpenApiRoutePattern(DocumentPath)
            // No web fonts: the page must work on a machine without internet access.
            .DisableDefaultFonts());
        return app;
    }

    private static byte[] ReadDocument()
    {
        using var stream = typeof(DocsEndpoints).Assembly.GetManifestResourceStream("openapi.json")
            ?? throw new InvalidOperationException("The embedded openapi.json is missing.");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
