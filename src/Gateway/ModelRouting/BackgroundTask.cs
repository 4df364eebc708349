using System.Text.Json.Nodes;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Recognises the requests Open WebUI makes after each answer on the chat's own model: a title, tags, follow-up
/// questions, a search query, an autocompletion. Each is one chat request whose last user message is one of its task
/// templates, which begin <c>### Task:</c> and quote what they work on in <c>&lt;chat_history&gt;</c> (or, for an
/// autocompletion, <c>&lt;text&gt;</c>). A person who starts a message that way and quotes a chat history in those tags
/// is taken for a task too.
/// </summary>
internal static class BackgroundTask
{
    private const string Header = "### Task:";

    public static bool IsOne(JsonObject request)
    {
        if (request["messages"] is not JsonArray { Count: > 0 } messages
            || messages[^1] is not JsonObject last
            || last["role"]?.GetValueKind() != System.Text.Json.JsonValueKind.String || (string?)last["role"] != "user")
        {
            return false;
        }

        var text = last["content"] switch
        {
            JsonValue value when value.TryGetValue<string>(out var content) => content,
            JsonArray blocks => string.Concat(blocks.OfType<JsonObject>()
                .Select(block => block["text"] is JsonValue t && t.TryGetValue<string>(out var part) ? part : "")),
            _ => "",
        };
        return text.TrimStart().StartsWith(Header, StringComparison.Ordinal)
            && (text.Contains("<chat_history>", StringComparison.Ordinal) || text.Contains("<text>", StringComparison.Ordinal));
    }

    /// <summary>
    /// Whether the request brings the results of the client's functions, which a turn already running waits on (a
    /// <c>tool</c> message, Anthropic's <c>tool_result</c> blocks, the Responses API's <c>function_call_output</c>): it
    /// goes on whatever the budgets say, because a running turn is never cut.
    /// </summary>
    public static bool ContinuesATurn(JsonObject request) =>
        (request["messages"] ?? request["input"]) is JsonArray { Count: > 0 } items && items[^1] is JsonObject last
        && (last["role"] is JsonValue role && role.TryGetValue<string>(out var name) && name == "tool"
            || last["type"] is JsonValue type && type.TryGetValue<string>(out var kind) && kind == "function_call_output"
            || last["content"] is JsonArray blocks && blocks.OfType<JsonObject>().Any(block => block["type"] is JsonValue t && t.TryGetValue<string>(out var k) && k == "tool_result"));
}
