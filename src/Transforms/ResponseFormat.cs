using System.Text.Json;

namespace ClaudeProxy.Transforms;

/// <summary>
/// Structured output (Ollama's <c>format</c>, OpenAI's <c>response_format</c>). The CLI has no JSON mode, so the
/// request becomes an instruction in the system prompt.
/// </summary>
internal static class ResponseFormat
{
    private const string JsonInstruction = "Answer with one valid JSON value only: no prose, no code fences.";

    public static string? FromOllama(JsonElement format) => format.ValueKind switch
    {
        JsonValueKind.String when format.GetString() == "json" => JsonInstruction,
        JsonValueKind.String when format.GetString() is null or "" => null,
        JsonValueKind.Object => $"{JsonInstruction} It must match this JSON schema:\n{format.GetRawText()}",
        JsonValueKind.Undefined or JsonValueKind.Null => null,
        _ => throw new DialectRequestException($"invalid format: {format.GetRawText()}"),
    };

    public static string? FromOpenAi(JsonElement responseFormat)
    {
        if (responseFormat.ValueKind != JsonValueKind.Object || !responseFormat.TryGetProperty("type", out var type))
        {
            return null;
        }

        return type.GetString() switch
        {
            "json_object" => JsonInstruction,
            "json_schema" when responseFormat.TryGetProperty("json_schema", out var schema)
                && schema.ValueKind == JsonValueKind.Object
                && schema.TryGetProperty("schema", out var body) => $"{JsonInstruction} It must match this JSON schema:\n{body.GetRawText()}",
            _ => null,
        };
    }

    /// <summary>Joins the client's system text and the format instruction into one system prompt.</summary>
    public static string? SystemPrompt(IEnumerable<string> systemParts, string? formatInstruction)
    {
        var parts = systemParts.Where(p => !string.IsNullOrWhiteSpace(p)).ToList();
        if (formatInstruction is not null)
        {
            parts.Add(formatInstruction);
        }

        return parts.Count == 0 ? null : string.Join("\n\n", parts);
    }
}
