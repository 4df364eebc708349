using System.Text.Json.Serialization.Metadata;
using ClaudeProxy.Transforms.Ollama;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The wire records of the API beyond the dialects' own (<see cref="ClaudeDialect.WireTypes"/>), and how they are
/// serialized: what the gateway's OpenAPI document is generated from, so that it describes what the codecs really read
/// and write.
/// </summary>
public static class ApiWireTypes
{
    /// <summary>The wire records' JSON contract: snake_case names, as both APIs spell them.</summary>
    public static IJsonTypeInfoResolver JsonResolver => DialectJsonContext.Default;

    public static Type OllamaVersion => typeof(OllamaVersion);

    public static Type OllamaModelList => typeof(OllamaModelList);

    public static Type OllamaShowRequest => typeof(OllamaShowRequest);

    public static Type OllamaShowResponse => typeof(OllamaShowResponse);

    public static Type OpenAiModelList => typeof(OpenAiModelList);

    public static Type OpenAiModel => typeof(OpenAiModel);

    /// <summary>The error body clients of that style read.</summary>
    public static Type ErrorOf(ErrorStyle style) => style switch
    {
        ErrorStyle.OpenAi => typeof(OpenAiErrorBody),
        ErrorStyle.Anthropic => typeof(Anthropic.AnthropicErrorBody),
        _ => typeof(OllamaError),
    };
}
