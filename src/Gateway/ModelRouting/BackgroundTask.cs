using System.Text.Json;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Recognises the requests Open WebUI makes after each answer on the chat's own model: a title, tags, follow-up
/// questions, a search query, an emoji, an autocompletion. Each is one chat request whose last user message is one of
/// its task templates, which all begin <c>### Task:</c> and quote what they work on in <c>&lt;chat_history&gt;</c> (or,
/// for an autocompletion, <c>&lt;text&gt;</c>). A person who starts a message that way and quotes a chat history in
/// those tags is taken for a task too.
/// </summary>
internal static class BackgroundTask
{
    private const string Header = "### Task:";

    /// <summary>Whether the (buffered) JSON request body is such a task; the body is left at its start.</summary>
    public static async Task<bool> IsOneAsync(Stream body, CancellationToken cancellationToken)
    {
        body.Position = 0;
        try
        {
            using var document = await JsonDocument.ParseAsync(body, cancellationToken: cancellationToken);
            return IsOne(document.RootElement);
        }
        catch (JsonException)
        {
            return false;
        }
        finally
        {
            body.Position = 0;
        }
    }

    internal static bool IsOne(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array
            || messages.GetArrayLength() == 0)
        {
            return false;
        }

        var last = messages[messages.GetArrayLength() - 1];
        if (last.ValueKind != JsonValueKind.Object || !last.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
            || role.GetString() != "user" || !last.TryGetProperty("content", out var content))
        {
            return false;
        }

        var text = content.ValueKind switch
        {
            JsonValueKind.String => content.GetString()!,
            JsonValueKind.Array => string.Concat(content.EnumerateArray()
                .Where(block => block.ValueKind == JsonValueKind.Object && block.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                .Select(block => block.GetProperty("text").GetString())),
            _ => "",
        };
        return text.TrimStart().StartsWith(Header, StringComparison.Ordinal)
            && (text.Contains("<chat_history>", StringComparison.Ordinal) || text.Contains("<text>", StringComparison.Ordinal));
    }
}
