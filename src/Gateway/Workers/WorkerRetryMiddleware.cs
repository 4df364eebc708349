using Yarp.ReverseProxy.Forwarder;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>
/// A Claude turn whose worker could not be reached (it died, or left) goes to another healthy worker at once, before the
/// health checks have noticed: nothing reached the client yet, and the request body is still here. The other worker
/// rebuilds a conversation without an id from the history the client sends.
/// </summary>
internal sealed partial class WorkerRetryMiddleware(RequestDelegate next, ILogger<WorkerRetryMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        if (proxy.Cluster.Config.ClusterId != ClaudeWorkers.ClusterId)
        {
            await next(context);
            return;
        }

        // The dialect transform puts the turn's bytes in place of the client's body: a retry starts from the client's.
        var clientBody = context.Request.Body;
        var clientLength = context.Request.ContentLength;
        var available = proxy.AvailableDestinations;
        while (true)
        {
            await next(context);
            if (context.Response.HasStarted
                || context.GetForwarderErrorFeature() is not { Error: ForwarderError.Request } error
                || proxy.ProxiedDestination is not { } failed
                || !clientBody.CanSeek)
            {
                return;
            }

            available = [.. available.Where(destination => destination != failed)];
            if (available.Count == 0)
            {
                return;
            }

            LogRetry(logger, failed.Model.Config.Address, error.Exception?.Message);
            proxy.AvailableDestinations = available;
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Response.StatusCode = StatusCodes.Status200OK;
            clientBody.Position = 0;
            (context.Request.Body, context.Request.ContentLength) = (clientBody, clientLength);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Claude worker at {Address} could not be reached ({Reason}); the turn goes to another worker")]
    private static partial void LogRetry(ILogger logger, string address, string? reason);
}
