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

    /// <summary>The most of a request body read to find its <c>model</c>.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxModelScanBytes { get; set; } = 32 * 1024 * 1024;
}
