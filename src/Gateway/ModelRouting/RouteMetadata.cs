using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.Yarp;

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

    public static ErrorStyle ErrorStyleOf(IReadOnlyDictionary<string, string>? metadata) =>
        metadata?.TryGetValue(ErrorStyle, out var style) == true && Enum.TryParse<ErrorStyle>(style, out var parsed)
            ? parsed
            : Transforms.ErrorStyle.Ollama;

    /// <summary>For answers given before a route is known (authentication, unexpected errors): by the path alone.</summary>
    public static ErrorStyle ErrorStyleOfPath(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/chat") || path.StartsWithSegments("/models")
            ? Transforms.ErrorStyle.OpenAi
            : Transforms.ErrorStyle.Ollama;

    public static IReadOnlyList<string> ModelPropertiesOf(IReadOnlyDictionary<string, string> metadata) =>
        metadata.TryGetValue(ModelProperty, out var names)
            ? names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : RequestModelReader.ModelProperties;
}
