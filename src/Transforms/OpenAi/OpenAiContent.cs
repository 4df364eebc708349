using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.OpenAi;

/// <summary>
/// A message's content in either OpenAI API: a string, or parts. Text parts are chat completions' <c>text</c> and the
/// Responses API's <c>input_text</c>/<c>output_text</c>; images are <c>image_url</c> (a data URL, or an object with
/// one) and <c>input_image</c>.
/// </summary>
internal static class OpenAiContent
{
    public static (string Text, List<ClaudeImage>? Images) Read(JsonElement content)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return (content.GetString()!, null);
            case JsonValueKind.Null or JsonValueKind.Undefined:
                return ("", null);
            case JsonValueKind.Array:
                var text = new StringBuilder();
                List<ClaudeImage>? images = null;
                foreach (var part in content.EnumerateArray())
                {
                    var type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) ? t.GetString() : null;
                    switch (type)
                    {
                        case "text" or "input_text" or "output_text" when part.TryGetProperty("text", out var partText) && partText.ValueKind == JsonValueKind.String:
                            text.Append(text.Length > 0 ? "\n" : "").Append(partText.GetString());
                            break;
                        case "image_url" or "input_image" when part.TryGetProperty("image_url", out var image):
                            var url = image.ValueKind == JsonValueKind.String ? image.GetString()
                                : image.ValueKind == JsonValueKind.Object && image.TryGetProperty("url", out var u) ? u.GetString() : null;
                            (images ??= []).Add(ImageData.FromDataUrl(url ?? ""));
                            break;
                        default:
                            throw new DialectRequestException($"unsupported content part type '{type}'");
                    }
                }

                return (text.ToString(), images);
            default:
                throw new DialectRequestException("message content must be a string or an array of content parts");
        }
    }
}
