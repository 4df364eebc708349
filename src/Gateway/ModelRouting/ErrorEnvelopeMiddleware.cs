using System.Net;
using ClaudeProxy.Gateway.Ollama;
using ClaudeProxy.Transforms;
using Yarp.ReverseProxy.Forwarder;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// The gateway's last word on a request that failed without an answer: a bug (an unhandled exception), a backend that
/// YARP could not reach (which it answers with a bare 502, 503 or 504) and a request Kestrel refused as it was read
/// (thrown, or reported by YARP) all get a body in the client's envelope, so every failure reads as a clear error in
/// the client's dialect, never as an empty 5xx, nor as a backend's fault when it was the client's.
/// </summary>
/// <remarks>
/// One middleware, first in the pipeline, for all of them: a last-resort handler and a forwarder-error envelope were two
/// frames that each awaited the whole request, and every request forwarded to Ollama passes through them.
/// </remarks>
internal sealed partial class ErrorEnvelopeMiddleware(RequestDelegate next, OllamaUpstream ollama, ILogger<ErrorEnvelopeMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
            // The client left: nobody reads an answer, and it is no bug.
            LogClientLeft(logger, context.Request.Path);
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = StatusCodes.Status499ClientClosedRequest;
            }

            return;
        }
        catch (Exception exception) when (!context.Response.HasStarted)
        {
            // (Once the answer has started the exception goes on to Kestrel, which ends the connection: a client then
            // sees a cut answer, which its dialect's stream reader reports.)
            context.Response.Clear();
            if (ClientErrorOf(exception) is { } thrown)
            {
                await WriteClientErrorAsync(context, thrown);
                return;
            }

            LogUnhandled(logger, context.Request.Path, exception);
            await ErrorEnvelopes.WriteAsync(context.Response, RouteMetadata.ErrorStyleOf(context.GetEndpoint()), HttpStatusCode.InternalServerError,
                "internal error in ClaudeProxy", context.RequestAborted);
            return;
        }

        if (context.Response.HasStarted || context.GetForwarderErrorFeature() is not { } error || error.Error == ForwarderError.RequestCanceled)
        {
            return;
        }

        if (ClientErrorOf(error.Exception) is { } reported)
        {
            await WriteClientErrorAsync(context, reported);
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
        await ErrorEnvelopes.WriteAsync(context.Response, RouteMetadata.ErrorStyleOf(context.GetEndpoint()), (HttpStatusCode)context.Response.StatusCode, message, context.RequestAborted);
    }

    /// <summary>
    /// The client's own request was bad (most often a body over the limit, which Kestrel finds only as it is read: by
    /// the model peek, a rule, a Claude model's answer, or YARP on its way to the backend). Its 4xx, and no bug.
    /// </summary>
    private static Task WriteClientErrorAsync(HttpContext context, BadHttpRequestException error) =>
        ErrorEnvelopes.WriteAsync(context.Response, RouteMetadata.ErrorStyleOf(context.GetEndpoint()), (HttpStatusCode)error.StatusCode, error.Message, context.RequestAborted);

    /// <summary>Kestrel's refusal of the request, thrown or inside what YARP reported (an aggregate when it failed copying the body).</summary>
    private static BadHttpRequestException? ClientErrorOf(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is BadHttpRequestException clientError)
            {
                return clientError;
            }
        }

        return null;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "An unhandled exception answered {Path} with a 500")]
    private static partial void LogUnhandled(ILogger logger, PathString path, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The client left {Path} before its answer")]
    private static partial void LogClientLeft(ILogger logger, PathString path);
}
