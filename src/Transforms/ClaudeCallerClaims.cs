using System.Security.Claims;

namespace ClaudeProxy.Transforms;

/// <summary>What the request's user (set by the gateway's authentication) says about the caller of a Claude turn.</summary>
public static class ClaudeCallerClaims
{
    /// <summary>A CLI tool the caller may use; one claim per tool.</summary>
    public const string AllowedTool = "claudeproxy:tool";

    /// <summary>The caller's name, when authenticated: conversations are kept per caller.</summary>
    public static string? Owner(ClaimsPrincipal user) =>
        user.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name } ? name : null;

    public static IReadOnlyList<string>? AllowedTools(ClaimsPrincipal user) =>
        user.FindAll(AllowedTool).Select(c => c.Value).ToList() is { Count: > 0 } tools ? tools : null;
}
