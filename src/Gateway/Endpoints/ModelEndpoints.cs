using System.Net;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.Gateway.Ollama;
using ClaudeProxy.Transforms;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary>
/// Discovery endpoints: the Ollama liveness and version probes and the model lists of both APIs. Single models
/// (<c>/api/show</c>, <c>/v1/models/{id}</c>) are proxy routes: see <see cref="ModelRouting.ModelRoutingMiddleware"/>.
/// </summary>
internal static class ModelEndpoints
{
    private static readonly string Ollama = DocsEndpoints.TagOf(ErrorStyle.Ollama);
    private static readonly string OpenAi = DocsEndpoints.TagOf(ErrorStyle.OpenAi);

    private static readonly string[] GetAndHead = [HttpMethods.Get, HttpMethods.Head];

    public static IEndpointRouteBuilder MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        // Listed models carry the gateway's start time: stable while it runs, as Ollama's files are.
        var listedAt = app.ServiceProvider.GetRequiredService<TimeProvider>().GetUtcNow();

        app.MapMethods("/", GetAndHead, () => new BodyResult("Ollama is running"u8.ToArray(), ContentType: "text/plain; charset=utf-8"))
            .WithSummary("Liveness: answers `Ollama is running` (HEAD too)").WithTags(Ollama).Produces<string>(contentType: "text/plain");
        app.MapMethods("/api/version", GetAndHead, VersionAsync)
            .WithSummary("Version (numeric, as Ollama clients require; HEAD too)").WithTags(Ollama).Produces(200, ApiWireTypes.OllamaVersion);
        app.MapGet("/version", VersionAsync)
            .WithSummary("Version (the original server's unprefixed path)").WithTags(Ollama).Produces(200, ApiWireTypes.OllamaVersion);

        // The lists merge Ollama's answer (if it comes in time) with the Claude models.
        app.MapMethods("/api/tags", GetAndHead, async (ClaudeModelCatalog catalog, OllamaUpstream ollama, CancellationToken cancellationToken) =>
                new BodyResult(ModelLists.OllamaTags(await ollama.GetAsync("/api/tags", cancellationToken), catalog.Models, listedAt)))
            .WithSummary("List models: Ollama's and the Claude ones (HEAD too)").WithTags(Ollama).Produces(200, ApiWireTypes.OllamaModelList);
        app.MapGet("/api/ps", async (ClaudeModelCatalog catalog, IClaudeLoadedProcesses processes, OllamaUpstream ollama, CancellationToken cancellationToken) =>
                new BodyResult(ModelLists.OllamaRunning(await ollama.GetAsync("/api/ps", cancellationToken), catalog.Models, processes.Loaded(), listedAt)))
            .WithSummary("Running models: Ollama's, and the Claude models whose CLI processes wait for turns").WithTags(Ollama).Produces(200, ApiWireTypes.OllamaModelList);
        foreach (var path in (string[])["/v1/models", "/models"])
        {
            // One path, two APIs: the Anthropic SDKs send anthropic-version with every request, OpenAI's never do.
            app.MapGet(path, async (HttpRequest request, ClaudeModelCatalog catalog, OllamaUpstream ollama, CancellationToken cancellationToken) =>
                {
                    var upstream = await ollama.GetAsync("/v1/models", cancellationToken);
                    return new BodyResult(request.Headers.ContainsKey(ModelLists.AnthropicVersionHeader)
                        ? ModelLists.AnthropicModels(upstream, catalog.Models, listedAt)
                        : ModelLists.OpenAiModels(upstream, catalog.Models, listedAt));
                })
                .WithSummary("List models: Ollama's and the Claude ones (in Anthropic's shape when the request has anthropic-version)")
                .WithTags(OpenAi).Produces(200, ApiWireTypes.OpenAiModelList)
                .WithMetadata(new ErrorStyleMetadata(ErrorStyle.OpenAi));
        }

        return app;
    }

    private static async Task<IResult> VersionAsync(OllamaUpstream ollama, IOptions<GatewayOptions> options, CancellationToken cancellationToken) =>
        new BodyResult(ModelLists.OllamaVersion(await ollama.GetAsync("/api/version", cancellationToken), options.Value.OllamaVersion));
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
