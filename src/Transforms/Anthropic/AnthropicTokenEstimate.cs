using System.Text;
using System.Text.Json;

namespace ClaudeProxy.Transforms.Anthropic;

/// <summary>
/// <c>POST /v1/messages/count_tokens</c> for a Claude model. The CLI cannot count tokens and the gateway holds no API key
/// of its own, so the count is an estimate: every string in the request (system, messages, tool definitions) at four
/// UTF-8 bytes a token, the rule of thumb for English text and code, and an image at about 1,600. The answer says so in
/// a header.
/// </summary>
public static class AnthropicTokenEstimate
{
    /// <summary>The header that marks the count as estimated, and how.</summary>
    public const string Header = "x-claudeproxy-token-count";

    public const string HeaderValue = "estimated: utf8-bytes/4";

    private const int BytesPerToken = 4;

    private const int ImageTokens = 1_600;

    /// <summary>The answer's body for a request body; null when the body is not a JSON object.</summary>
    public static byte[]? Answer(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            long bytes = 0;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name is "system" or "messages" or "tools")
                {
                    bytes += StringBytes(property.Value);
                }
            }

            return JsonOutput.ToBytes(new AnthropicTokenCount((bytes + BytesPerToken - 1) / BytesPerToken), DialectJsonContext.Default.AnthropicTokenCount);
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static long StringBytes(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => Encoding.UTF8.GetByteCount(element.GetString()!),
        JsonValueKind.Array => element.EnumerateArray().Sum(StringBytes),
        // An image is about 1,600 tokens whatever its size in base64; a thinking signature is not read as text.
        JsonValueKind.Object when element.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "image" => ImageTokens * BytesPerToken,
        JsonValueKind.Object => element.EnumerateObject().Sum(p => p.Name is "type" or "cache_control" or "signature" or "data" ? 0 : StringBytes(p.Value)),
        _ => 0,
    };
}
