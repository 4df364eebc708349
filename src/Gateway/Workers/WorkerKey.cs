using System.Net;
using System.Security.Cryptography;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.Yarp;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>The header in which a gateway presents <see cref="GatewayOptions.WorkerKey"/> to its workers.</summary>
internal static class WorkerKeyHeader
{
    public const string Name = "X-ClaudeProxy-Worker-Key";
}

/// <summary>
/// On a worker with <see cref="GatewayOptions.WorkerKey"/>: a turn comes only from a gateway that presents it, because a
/// turn names its caller and the CLI tools it may use, which the gateway decided.
/// </summary>
internal sealed class WorkerKeyMiddleware(RequestDelegate next, IOptions<GatewayOptions> options)
{
    private readonly byte[]? _digest = options.Value.WorkerKey is { Length: > 0 } key ? TextDigest.Sha256(key) : null;

    public async Task InvokeAsync(HttpContext context)
    {
        if (_digest is not null
            && !CryptographicOperations.FixedTimeEquals(_digest, TextDigest.Sha256(context.Request.Headers[WorkerKeyHeader.Name].ToString())))
        {
            await ErrorEnvelopes.WriteAsync(context.Response, ErrorStyle.OpenAi, HttpStatusCode.Unauthorized,
                $"unauthorized: a Claude worker takes turns only from its gateway ({WorkerKeyHeader.Name})", context.RequestAborted);
            return;
        }

        await next(context);
    }
}

/// <summary>A gateway presents its worker key with every turn it sends to a worker, and to nothing else.</summary>
internal sealed class WorkerKeyTransformProvider(IOptions<GatewayOptions> options) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        if (options.Value is not { HasWorkers: true, WorkerKey: { Length: > 0 } key })
        {
            return;
        }

        context.AddRequestTransform(transform =>
        {
            // The model routing may send a Claude route's request to Ollama: the key goes to the workers only.
            if (ClaudeTransformProvider.IsClaudeCluster(transform.HttpContext.Features.Get<IReverseProxyFeature>()?.Cluster))
            {
                transform.ProxyRequest.Headers.Remove(WorkerKeyHeader.Name);
                transform.ProxyRequest.Headers.TryAddWithoutValidation(WorkerKeyHeader.Name, key);
            }

            return ValueTask.CompletedTask;
        });
    }
}
