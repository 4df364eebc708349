namespace ClaudeProxy.Transforms;

/// <summary>How the dialects treat request fields the CLI cannot pass to the model (configuration section <c>Dialects</c>).</summary>
public sealed class DialectOptions
{
    public const string SectionName = "Dialects";

    /// <summary>
    /// Refuse (400) a request with a field that would be ignored, such as <c>temperature</c>, instead of answering without
    /// it and naming it in the <c>x-claudeproxy-ignored</c> header.
    /// </summary>
    public bool RefuseIgnoredFields { get; set; }
}
