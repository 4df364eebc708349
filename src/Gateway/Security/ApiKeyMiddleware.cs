using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.Transforms;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Security;

/// <summary>
/// With API keys configured, a request needs one: <c>Authorization: Bearer &lt;key&gt;</c> (OpenAI clients, Open WebUI)
/// or <c>X-API-Key</c>. Keys are compared as SHA-256 digests in constant time. The caller becomes the request's user:
/// its key's name (conversations are kept per name) and the tools its key allows.
/// </summary>
internal sealed partial class ApiKeyMiddleware(RequestDelegate next, IOptions<GatewayOptions> options, ILogger<ApiKeyMiddleware> logger)
{
    private readonly (byte[] Digest, ApiKeyOptions Key)[] _keys = options.Value.ApiKeys
        .Select(k => (TextDigest.Sha256(k.Key), k)).ToArray();

    // Without keys (the loopback default) the request goes straight on, with no async state of its own.
    public Task InvokeAsync(HttpContext context) =>
        _keys.Length == 0 || IsPublic(context.Request.Path) ? next(context) : AuthenticateAsync(context);

    private async Task AuthenticateAsync(HttpContext context)
    {
        if (Find(PresentedKey(context.Request)) is not { } key)
        {
            LogRejected(logger, context.Request.Path);
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await ErrorEnvelopes.WriteAsync(
                context.Response,
                RouteMetadata.ErrorStyleOf(context.GetEndpoint()),
                HttpStatusCode.Unauthorized,
                "unauthorized: a valid API key is required (Authorization: Bearer <key>, or X-API-Key)",
                context.RequestAborted);
            return;
        }

        List<Claim> claims = [new(ClaimTypes.Name, key.Name)];
        claims.AddRange(key.AllowedTools.Select(tool => new Claim(ClaudeCallerClaims.AllowedTool, tool)));
        context.User = new ClaimsPrincipal(new ClaimsIdentity(claims, authenticationType: "ApiKey"));
        await next(context);
    }

    private bool IsPublic(PathString path) =>
        path == "/"
        || (options.Value.PublicHealth && (path == "/healthz" || path == "/readyz"))
        || (options.Value.PublicMetrics && path == "/metrics");

    private static string? PresentedKey(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim();
        }

        return request.Headers["X-API-Key"].ToString() is { Length: > 0 } header ? header.Trim() : null;
    }

    private ApiKeyOptions? Find(string? presented)
    {
        if (string.IsNullOrEmpty(presented))
        {
            return null;
        }

        // Every key is compared, so the time taken says nothing about which one (or how much of one) matched.
        var digest = TextDigest.Sha256(presented);
        ApiKeyOptions? match = null;
        foreach (var (keyDigest, key) in _keys)
        {
            if (CryptographicOperations.FixedTimeEquals(digest, keyDigest))
            {
                match = key;
            }
        }

        return match;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Request to {Path} without a valid API key")]
    private static partial void LogRejected(ILogger logger, string path);
}
