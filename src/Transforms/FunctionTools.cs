using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms;

/// <summary>A function the client offers, in the shape OpenAI and Ollama share: <c>{"type":"function","function":{…}}</c>.</summary>
internal sealed record FunctionTool(string? Type, FunctionDefinition? Function);

internal sealed record FunctionDefinition(string? Name, string? Description, JsonElement Parameters);

/// <summary>
/// The client's functions for the backend, and what <c>tool_choice</c> and <c>parallel_tool_calls</c> ask of the model.
/// The CLI has no switch for either, so they become an instruction in the system prompt; <c>none</c> keeps the
/// functions listed (earlier calls in the history need them) and tells the model not to call one.
/// </summary>
internal static class FunctionTools
{
    private static readonly JsonElement EmptyObjectSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();
    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    public static IReadOnlyList<ClaudeTool>? From(IReadOnlyList<FunctionTool>? tools)
    {
        if (tools is null or { Count: 0 })
        {
            return null;
        }

        return [.. tools.Select(tool => tool switch
        {
            { Type: not (null or "function") } => throw new DialectRequestException($"tool type '{tool.Type}' is not supported: only 'function' is"),
            { Function: { Name: { Length: > 0 } name } function } => new ClaudeTool(
                name,
                function.Description,
                function.Parameters.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? EmptyObjectSchema : function.Parameters),
            _ => throw new DialectRequestException("every tool needs a function with a name"),
        })];
    }

    /// <summary>The instruction for OpenAI's <c>tool_choice</c> and <c>parallel_tool_calls</c>, or null for the defaults.</summary>
    public static string? Instruction(JsonElement toolChoice, bool? parallelToolCalls, IReadOnlyList<ClaudeTool>? tools) => toolChoice.ValueKind switch
    {
        JsonValueKind.Undefined or JsonValueKind.Null => Instruction(null, null, parallelToolCalls, tools),
        JsonValueKind.String when toolChoice.GetString() is "auto" or "none" or "required" => Instruction(toolChoice.GetString(), null, parallelToolCalls, tools),
        JsonValueKind.String => throw new DialectRequestException($"invalid tool_choice '{toolChoice.GetString()}': use 'auto', 'none', 'required' or a function"),
        JsonValueKind.Object when toolChoice.TryGetProperty("function", out var function)
            && function.TryGetProperty("name", out var name) && name.GetString() is { } named => Instruction("function", named, parallelToolCalls, tools),
        // The Responses API's own shape: {"type":"function","name":…}.
        JsonValueKind.Object when toolChoice.TryGetProperty("name", out var flatName) && flatName.GetString() is { } flat => Instruction("function", flat, parallelToolCalls, tools),
        _ => throw new DialectRequestException("invalid tool_choice: use 'auto', 'none', 'required' or {\"type\":\"function\",\"function\":{\"name\":…}}"),
    };

    /// <summary>The instruction for a tool choice, or null for the defaults.</summary>
    /// <param name="mode"><c>auto</c> (or null), <c>none</c>, <c>required</c>, or <c>function</c> with <paramref name="function"/>.</param>
    public static string? Instruction(string? mode, string? function, bool? parallel, IReadOnlyList<ClaudeTool>? tools)
    {
        if (tools is null)
        {
            return null;
        }

        var choice = mode switch
        {
            null or "auto" => null,
            "none" => "Do not call any of the functions in this reply; answer in text.",
            "required" => "You must call at least one of the functions in this reply.",
            "function" when tools.Any(t => t.Name == function) => $"You must call the function '{function}' in this reply.",
            "function" => throw new DialectRequestException($"tool_choice names the function '{function}', which is not among the tools"),
            _ => throw new DialectRequestException($"invalid tool_choice '{mode}'"),
        };
        var single = parallel == false ? "Call at most one function at a time." : null;
        return choice is null && single is null ? null : string.Join(' ', new[] { choice, single }.Where(s => s is not null));
    }

    /// <summary>Arguments as the text of a JSON object, whatever the client sent (an object, or the text of one).</summary>
    public static string ArgumentsText(JsonElement arguments) => arguments.ValueKind switch
    {
        JsonValueKind.Object => arguments.GetRawText(),
        JsonValueKind.String => arguments.GetString() is { Length: > 0 } text ? text : "{}",
        _ => "{}",
    };

    /// <summary>Arguments as a JSON object, for Ollama's wire.</summary>
    public static JsonElement ArgumentsObject(string arguments)
    {
        try
        {
            using var document = JsonDocument.Parse(arguments);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return EmptyObject;
        }
    }
}
