using ClaudeProxy.Transforms;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>
/// In front of workers, names the conversation a Claude turn belongs to and where it is (<see cref="ConversationAffinity"/>,
/// for <see cref="ConversationHashPolicy"/>), and once a worker has answered the turn, records that worker as the
/// conversation's (<see cref="IConversationPlacements"/>).
/// </summary>
internal sealed class ConversationPlacementMiddleware(RequestDelegate next, IConversationPlacements placements)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        if (proxy.Cluster.Config.ClusterId != ClaudeWorkers.ClusterId)
        {
            await next(context);
            return;
        }

        var affinity = await AffinityOfAsync(context);
        if (affinity is not null)
        {
            var placement = await placements.FindAsync(affinity.Digest, context.RequestAborted);
            affinity = affinity with { Worker = placement.Worker, IsNew = affinity.IsNew || placement.Unplaced };
            context.Features.Set(affinity);
        }

        await next(context);

        if (affinity is not null
            && proxy.ProxiedDestination is { } worker
            && context.Response.StatusCode is >= 200 and < 300
            && context.GetForwarderErrorFeature() is null)
        {
            placements.Place(affinity.Digest, worker.Model.Config.Address);
        }
    }

    private static async Task<ConversationAffinity?> AffinityOfAsync(HttpContext context)
    {
        // Buffered when the model was read from it; read again by the dialect.
        context.Request.EnableBuffering();
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        context.Request.Body.Position = 0;
        return ConversationAffinity.Of(body.ToArray(), ClaudeCallerClaims.Owner(context.User));
    }
}
