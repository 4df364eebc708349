using System.Net;
using ClaudeProxy.Gateway.Ollama;
using ClaudeProxy.Transforms;
using Yarp.ReverseProxy.Forwarder;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// YARP answers a backend it could not reach with a bare status (502, 503, 504). This gives that status a body in
/// the client's envelope, so every failure reads as a clear error in the client's dialect.
/// </summary>
internal sealed class ForwarderErrorMiddleware(RequestDelegate next, OllamaUpstream ollama)
{
    public async Task InvokeAsync(HttpContext context)
    {
        await next(context);

        if (context.Response.HasStarted || context.GetForwarderErrorFeature() is not { } error || error.Error == ForwarderError.RequestCanceled)
        {
            return;
        }

        var proxy = context.GetReverseProxyFeature();
        var backend = proxy.Cluster.Config.ClusterId == OllamaClusterConfigFilter.ClusterId ? "Ollama" : $"The {proxy.Cluster.Config.ClusterId} backend";
        var message = error.Error switch
        {
            ForwarderError.NoAvailableDestinations when backend == "Ollama" && !ollama.IsConfigured => "No Ollama is configured (set OLLAMA_URL).",
            ForwarderError.NoAvailableDestinations => $"{backend} is not available: its health checks are failing.",
            ForwarderError.RequestTimedOut => $"{backend} did not answer in time.",
            _ => $"{backend} could not be reached: {error.Exception?.Message ?? error.Error.ToString()}",
        };
        var style = RouteMetadata.ErrorStyleOf(proxy.Route.Config.Metadata);
        await ErrorEnvelopes.WriteAsync(context.Response, style, (HttpStatusCode)context.Response.StatusCode, message, context.RequestAborted);
    }
}
