using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>
/// In front of workers, names the conversation a Claude turn belongs to and where it is (<see cref="ConversationAffinity"/>,
/// for <see cref="ConversationHashPolicy"/>), and as soon as a worker starts to answer the turn, records that worker as
/// the conversation's (<see cref="IConversationPlacements"/>): before the client can send the next turn, or the results
/// of the calls it is being sent.
/// </summary>
internal sealed class ConversationPlacementMiddleware(RequestDelegate next, IConversationPlacements placements, IResponsesHistory responses)
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
        if (affinity?.PreviousResponseId is { } previous && await OpeningOfAsync(context, previous) is { } opening)
        {
            // A request that goes on from a response: its conversation's key is the one its first turn had.
            affinity = affinity.GoingOnFrom(opening);
        }

        if (affinity is not null)
        {
            var placement = await placements.FindAsync(affinity.Key, context.RequestAborted);
            // An id nobody placed is a new conversation; a history with answers in it that nobody placed is not (its
            // placement was lost, or it is older than placements): it goes by its hash, where it was.
            affinity = affinity with { Worker = placement.Worker, IsNew = affinity.IsNew || (placement.Unplaced && affinity.IsById) };
            context.Features.Set(affinity);
            context.Response.OnStarting(() =>
            {
                if (proxy.ProxiedDestination is { } worker && context.Response.StatusCode is >= 200 and < 300)
                {
                    placements.Place(affinity.Key, worker.Model.Config.Address);
                }

                return Task.CompletedTask;
            });
        }

        await next(context);
    }

    /// <summary>The first user message of the conversation of the response a request goes on from; null if none is known.</summary>
    private async Task<string?> OpeningOfAsync(HttpContext context, string previousResponseId)
    {
        try
        {
            var earlier = await responses.FindAsync(ClaudeCallerClaims.Owner(context.User), previousResponseId, context.RequestAborted);
            return earlier?.FirstOrDefault(message => message.Role == ClaudeMessage.UserRole)?.Text;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // A store that does not answer: the dialect says so to the client; the placement goes by the request.
            return null;
        }
    }

    private static async Task<ConversationAffinity?> AffinityOfAsync(HttpContext context)
    {
        // Buffered already for a Claude turn by the model routing; read again by the dialect.
        context.Request.EnableBuffering();
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        context.Request.Body.Position = 0;
        return ConversationAffinity.Of(body.ToArray(), ClaudeCallerClaims.Owner(context.User));
    }
}
