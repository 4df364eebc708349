using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.Gateway;

/// <summary>The gateway's own settings. Bound from the <c>Gateway</c> section; <c>HOST</c> and <c>PORT</c> override.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    [Required]
    public string Host { get; set; } = "127.0.0.1";

    [Range(1, 65535)]
    public int Port { get; set; } = 22434;

    /// <summary>What <c>/api/version</c> reports: numeric, because Open WebUI parses it and Copilot wants ≥ 0.6.4.</summary>
    [Required]
    [RegularExpression(@"^\d+\.\d+\.\d+$")]
    public string OllamaVersion { get; set; } = "0.12.6";

    /// <summary>
    /// The Ollama behind the gateway (<c>OLLAMA_URL</c>). Null keeps the <c>ollama</c> cluster of the configuration
    /// (several destinations allowed); <c>none</c> or empty turns Ollama off.
    /// </summary>
    public string? OllamaUrl { get; set; }

    /// <summary>
    /// How long the model lists and <c>/api/version</c> wait for Ollama before answering without it: Open WebUI drops
    /// every model when a list fails, so a slow Ollama must not take the Claude models down with it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan OllamaListTimeout { get; set; } = TimeSpan.FromSeconds(1.5);

    public bool OllamaDisabled => OllamaUrl is not null && (OllamaUrl.Length == 0 || OllamaUrl.Equals("none", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// API keys; when there are any, every request needs one (<c>Authorization: Bearer</c> or <c>X-API-Key</c>), except
    /// the liveness probe <c>/</c> and what <see cref="PublicHealth"/> and <see cref="PublicMetrics"/> open.
    /// <c>CLAUDEPROXY_API_KEYS</c> adds comma-separated keys.
    /// </summary>
    [ValidateEnumeratedItems]
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>Lets the gateway listen beyond loopback without API keys (e.g. inside a private compose network).</summary>
    public bool AllowUnauthenticatedRemote { get; set; }

    /// <summary>Whether <c>/healthz</c> and <c>/readyz</c> answer without a key.</summary>
    public bool PublicHealth { get; set; } = true;

    /// <summary>Whether <c>/metrics</c> answers without a key (model names and costs are in it).</summary>
    public bool PublicMetrics { get; set; }

    /// <summary>
    /// Whether ASP.NET Core's per-request meters (<c>http.server.*</c>, routing, and HttpClient's <c>http.client.*</c>
    /// for the calls to Ollama) are exported too. Off by default: under load they cost the Ollama pass-through about a
    /// tenth of its throughput (bench/README.md), and the GenAI metrics already time every model request.
    /// </summary>
    public bool HttpMetrics { get; set; }

    /// <summary>The largest request body accepted (413 beyond); blob uploads to Ollama are exempt.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>The most of a request body read to find its <c>model</c>.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxModelScanBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>
    /// What this process is (<c>CLAUDEPROXY_ROLE</c>): <c>gateway</c>, the whole front door, or <c>worker</c>, only the
    /// Claude backend's contract (<c>POST /v1/turns</c>) with health and metrics, for a gateway in front of it.
    /// </summary>
    [RegularExpression("^(gateway|worker)$")]
    public string Role { get; set; } = GatewayRole;

    /// <summary>
    /// Claude workers this gateway sends its Claude turns to (<c>CLAUDEPROXY_WORKERS</c>, comma-separated base URLs)
    /// instead of running the CLI itself; none by default.
    /// </summary>
    public List<string> Workers { get; set; } = [];

    /// <summary>
    /// What every caller's Claude turns together may cost per period (<see cref="Budgets.BudgetOptions"/>); none by default.
    /// Each API key may have one of its own too (<see cref="ApiKeyOptions.Budget"/>).
    /// </summary>
    [ValidateObjectMembers]
    public Budgets.BudgetOptions? Budget { get; set; }

    /// <summary>
    /// The secret a gateway and its workers share (<c>CLAUDEPROXY_WORKER_KEY</c>): a worker trusts the caller and the
    /// tools a turn names only from whoever presents it (<c>X-ClaudeProxy-Worker-Key</c>). Required for a worker, or
    /// workers, beyond loopback.
    /// </summary>
    public string? WorkerKey { get; set; }

    public const string GatewayRole = "gateway";

    public const string WorkerRole = "worker";

    public bool IsWorker => Role == WorkerRole;

    public bool HasWorkers => Workers.Count > 0;
}

/// <summary>The data annotations of <see cref="GatewayOptions"/>, each API key's included, checked by generated code.</summary>
[OptionsValidator]
internal sealed partial class GatewayOptionsDataValidator : IValidateOptions<GatewayOptions>;

/// <summary>One API key and what its holder may do.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>A name for logs and for keeping conversations apart; never the key itself.</summary>
    [Required]
    public string Name { get; set; } = "";

    [Required]
    [MinLength(16)]
    public string Key { get; set; } = "";

    /// <summary>CLI tools this key may use (e.g. <c>Read</c>); none by default, which is the safe profile.</summary>
    public List<string> AllowedTools { get; set; } = [];

    /// <summary>What this key's Claude turns may cost per period; none by default.</summary>
    [ValidateObjectMembers]
    public Budgets.BudgetOptions? Budget { get; set; }
}
