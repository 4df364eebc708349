using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway.Security;

/// <summary>
/// Refuses to start a gateway that others could reach without a key, or with keys that make no sense (beyond their data
/// annotations, which <see cref="GatewayOptionsDataValidator"/> checks).
/// </summary>
internal sealed partial class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        List<string> failures = [];
        if (options.IsWorker)
        {
            if (options.HasWorkers)
            {
                failures.Add("A worker (CLAUDEPROXY_ROLE=worker) runs the CLI itself: it cannot have workers of its own (CLAUDEPROXY_WORKERS).");
            }

            if (!IsLoopback(options.Host) && string.IsNullOrEmpty(options.WorkerKey))
            {
                failures.Add($"HOST={options.Host} lets other machines reach this worker, whose turns name who is asking and the tools they may use. "
                    + "Set CLAUDEPROXY_WORKER_KEY to a secret its gateway shares.");
            }
        }
        else if (!IsLoopback(options.Host) && options.ApiKeys.Count == 0 && !options.AllowUnauthenticatedRemote)
        {
            failures.Add($"HOST={options.Host} lets other machines reach the gateway, and through it your Claude login. Set API keys "
                + "(CLAUDEPROXY_API_KEYS or Gateway:ApiKeys), or CLAUDEPROXY_ALLOW_UNAUTHENTICATED=true if the network is private.");
        }

        foreach (var worker in options.Workers)
        {
            if (!Uri.TryCreate(worker, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                failures.Add($"Claude worker '{worker}' is not an http(s) URL.");
            }
            else if (!IsLoopback(uri.Host) && string.IsNullOrEmpty(options.WorkerKey))
            {
                failures.Add($"Claude worker {worker} is beyond loopback: set CLAUDEPROXY_WORKER_KEY to the secret the workers require.");
            }
        }

        foreach (var key in options.ApiKeys)
        {
            failures.AddRange(key.AllowedTools.Where(tool => !ToolName().IsMatch(tool)).Select(tool => $"API key '{key.Name}' allows an invalid tool name '{tool}'."));
        }

        if (options.ApiKeys.Select(k => k.Name).Distinct(StringComparer.Ordinal).Count() != options.ApiKeys.Count)
        {
            failures.Add("API key names must be unique.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    /// <summary>A built-in tool (<c>Read</c>, <c>Grep</c>) or an MCP tool (<c>mcp__server__tool</c>): nothing that could smuggle a flag.</summary>
    [GeneratedRegex("^(mcp__)?[A-Za-z][A-Za-z0-9_]*$")]
    private static partial Regex ToolName();
}
