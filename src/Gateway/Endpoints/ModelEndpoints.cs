using System.Net;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Transforms;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary>Discovery endpoints: the Ollama liveness and version probes and the model lists of both APIs.</summary>
internal static class ModelEndpoints
{
    private static readonly string[] GetAndHead = [HttpMethods.Get, HttpMethods.Head];

    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        // Listed models carry the gateway's start time: stable while it runs, as Ollama's files are.
        var listedAt = app.ServiceProvider.GetRequiredService<TimeProvider>().GetUtcNow();

        app.MapMethods("/", GetAndHead, () => new BodyResult("Ollama is running"u8.ToArray(), ContentType: "text/plain; charset=utf-8"));
        app.MapMethods("/api/version", GetAndHead, Version);
        app.MapGet("/version", Version);

        app.MapMethods("/api/tags", GetAndHead, (ClaudeModelCatalog catalog) =>
            new BodyResult(ModelLists.OllamaTags(catalog.Models, listedAt)));
        app.MapGet("/api/ps", () => new BodyResult(ModelLists.OllamaRunning()));
        app.MapPost("/api/show", async (HttpRequest request, ClaudeModelCatalog catalog, CancellationToken cancellationToken) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body, cancellationToken);
            var name = ModelLists.ReadShowModel(body.ToArray());
            if (string.IsNullOrEmpty(name))
            {
                return OllamaError(HttpStatusCode.BadRequest, "model is required");
            }

            return catalog.TryFind(name, out var model)
                ? new BodyResult(ModelLists.OllamaShow(model, listedAt))
                : OllamaError(HttpStatusCode.NotFound, $"model '{name}' not found");
        });

        foreach (var prefix in (string[])["/v1/models", "/models"])
        {
            app.MapGet(prefix, (ClaudeModelCatalog catalog) =>
                new BodyResult(ModelLists.OpenAiModels(catalog.Models, listedAt)));
            app.MapGet(prefix + "/{*id}", (string id, ClaudeModelCatalog catalog) =>
                catalog.TryFind(id, out _)
                    ? new BodyResult(ModelLists.OpenAiModel(id, listedAt))
                    : new BodyResult(ErrorEnvelopes.Create(ErrorStyle.OpenAi, HttpStatusCode.NotFound, $"The model '{id}' does not exist", "model_not_found"), HttpStatusCode.NotFound));
        }

        return app;
    }

    private static IResult Version(IOptions<GatewayOptions> options) =>
        new BodyResult(ModelLists.OllamaVersion(options.Value.OllamaVersion));

    private static IResult OllamaError(HttpStatusCode status, string message) =>
        new BodyResult(ErrorEnvelopes.Create(ErrorStyle.Ollama, status, message), status);
}

/// <summary>
/// A ready body with a status (the wire types are serialized by the dialect codecs, not here). HEAD gets the headers
/// only, as from Ollama.
/// </summary>
internal sealed record BodyResult(byte[] Body, HttpStatusCode Status = HttpStatusCode.OK, string ContentType = ErrorEnvelopes.JsonContentType) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = (int)Status;
        httpContext.Response.ContentType = ContentType;
        httpContext.Response.ContentLength = Body.Length;
        return HttpMethods.IsHead(httpContext.Request.Method)
            ? Task.CompletedTask
            : httpContext.Response.Body.WriteAsync(Body, httpContext.RequestAborted).AsTask();
    }
}
