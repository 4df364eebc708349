using System.Net;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.Yarp;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Chooses the backend of a model-bearing request from the body's <c>model</c>. Routes opt in with a
/// <c>ClaudeDialect</c> in their metadata and name the claude cluster; a request for any other model is handed to the
/// <c>ollama</c> cluster when there is one, and is answered "model not found" when there is not.
/// </summary>
internal sealed partial class ModelRoutingMiddleware(
    RequestDelegate next,
    IProxyStateLookup proxyState,
    ClaudeModelCatalog catalog,
    IOptions<GatewayOptions> options,
    ILogger<ModelRoutingMiddleware> logger)
{
    public const string OllamaClusterId = "ollama";

    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        if (proxy.Route.Config.Metadata?.TryGetValue(ClaudeTransformProvider.DialectMetadataKey, out var dialectName) != true
            || !ClaudeDialects.TryGet(dialectName, out var dialect)
            || !HttpMethods.IsPost(context.Request.Method))
        {
            await next(context);
            return;
        }

        // Buffer so the body can be read for the model and then again for the backend.
        context.Request.EnableBuffering();
        var model = await RequestModelReader.ReadAsync(context.Request.Body, options.Value.MaxModelScanBytes, context.RequestAborted);
        context.Request.Body.Position = 0;

        // A Claude model, or a body without a readable model, stays on the route's (claude) cluster: the dialect
        // transform answers a malformed request in the client's own terms.
        if (model is null || catalog.TryFind(model, out _))
        {
            await next(context);
            return;
        }

        if (proxyState.TryGetCluster(OllamaClusterId, out var ollama))
        {
            context.ReassignProxyRequest(ollama);
            await next(context);
            return;
        }

        LogUnknownModel(logger, model);
        await ErrorEnvelopes.WriteAsync(context.Response, dialect.ErrorStyle, HttpStatusCode.NotFound, $"model '{model}' not found", context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "No backend serves model '{Model}'")]
    private static partial void LogUnknownModel(ILogger logger, string model);
}
