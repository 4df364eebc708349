using ClaudeProxy.Transforms.Telemetry;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace ClaudeProxy.Transforms.Yarp;

/// <summary>
/// On routes that carry a <c>GenAiOperation</c>, measures what goes to a backend other than Claude (Ollama): the
/// response body is tapped for the final usage as it streams past.
/// </summary>
public sealed class OllamaUsageTransformProvider : ITransformProvider
{
    public const string OperationMetadataKey = "GenAiOperation";

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        if (context.Route.Metadata?.ContainsKey(OperationMetadataKey) == true)
        {
            context.AddResponseTransform(TapAsync);
        }
    }

    private static async ValueTask TapAsync(ResponseTransformContext context)
    {
        if (ClaudeTransformProvider.IsClaudeCluster(context.HttpContext.Features.Get<IReverseProxyFeature>()?.Cluster)
            || context.HttpContext.Features.Get<GenAiRequestTimer>() is not { } timer)
        {
            return;
        }

        if (context.ProxyResponse is not { } response)
        {
            // No answer: a client that left first, or an upstream that could not be reached.
            timer.Fail(context.HttpContext.RequestAborted.IsCancellationRequested ? GenAiObservation.Cancelled : GenAiObservation.UpstreamUnreachable);
            return;
        }

        if (!response.IsSuccessStatusCode)
        {
            timer.Fail(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            return;
        }

        // YARP copied the headers already; only the body is wrapped, and it stays byte for byte the same.
        var body = await response.Content.ReadAsStreamAsync(context.CancellationToken);
        response.Content = new OllamaUsageTap(body, timer, response.Content.Headers.ContentLength, context.HttpContext.RequestAborted).AsContent();
    }
}
