using System.ComponentModel.DataAnnotations;

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

    /// <summary>The most of a request body read to find its <c>model</c>.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxModelScanBytes { get; set; } = 32 * 1024 * 1024;
}
