using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.Yarp;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>The route metadata keys of config/gateway.json that steer model routing, and how to read them.</summary>
internal static class RouteMetadata
{
    /// <summary><c>body</c>: the model is the body's <c>model</c> (or <c>ModelProperty</c>); <c>path</c>: the route value <c>model</c>.</summary>
    public const string ModelRouting = "ModelRouting";

    /// <summary>Which body properties name the model, comma-separated, in order of preference.</summary>
    public const string ModelProperty = "ModelProperty";

    /// <summary>
    /// On a route that goes to Ollama, what a Claude model name gets instead: <c>show</c>, <c>pull</c>,
    /// <c>openai-model</c>, or <c>error:</c> and the end of a sentence that starts with the model's name.
    /// </summary>
    public const string ClaudeModelAnswer = "ClaudeModelAnswer";

    /// <summary><c>OpenAi</c> for routes whose clients read OpenAI's error object; Ollama's envelope otherwise.</summary>
    public const string ErrorStyle = "ErrorStyle";

    /// <summary>Set on routes whose bodies may exceed <see cref="GatewayOptions.MaxRequestBodyBytes"/> (Ollama blob uploads).</summary>
    public const string UnlimitedRequestBody = "UnlimitedRequestBody";

    public const string DialectKey = ClaudeTransformProvider.DialectMetadataKey;

    /// <summary>
    /// The error envelope a route's clients read: its dialect's when it names one, else its <c>ErrorStyle</c>, else
    /// Ollama's. The one rule for every error the gateway answers.
    /// </summary>
    public static ErrorStyle ErrorStyleOf(IReadOnlyDictionary<string, string>? metadata) =>
        metadata?.TryGetValue(DialectKey, out var name) == true && ClaudeDialects.TryGet(name, out var dialect) ? dialect.ErrorStyle
        : metadata?.TryGetValue(ErrorStyle, out var style) == true && Enum.TryParse<ErrorStyle>(style, out var parsed) ? parsed
        : Transforms.ErrorStyle.Ollama;

    /// <summary>
    /// For answers given outside a proxy route's own pipeline (authentication, unexpected errors): by the endpoint the
    /// request matched, a proxy route by its metadata as above, a discovery endpoint by its <see cref="ErrorStyleMetadata"/>.
    /// </summary>
    public static ErrorStyle ErrorStyleOf(Endpoint? endpoint) =>
        endpoint?.Metadata.GetMetadata<RouteModel>() is { } route ? ErrorStyleOf(route.Config.Metadata)
        : endpoint?.Metadata.GetMetadata<ErrorStyleMetadata>()?.Style ?? Transforms.ErrorStyle.Ollama;

    public static IReadOnlyList<string> ModelPropertiesOf(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue(ModelProperty, out var names)
            ? names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : RequestModelReader.ModelProperties;
}

/// <summary>Names the error envelope of a discovery endpoint whose clients read OpenAI's (<c>/v1/models</c>).</summary>
internal sealed record ErrorStyleMetadata(ErrorStyle Style);
