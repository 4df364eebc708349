using System.Text.Json;
using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Serves the client's functions to one CLI process as an MCP server inside its stream-json pipe (an <c>sdk</c> server in
/// the CLI's <c>--mcp-config</c>): it answers the CLI's handshake and <c>tools/list</c> at once, and answers a
/// <c>tools/call</c>, which the CLI waits for, with the result the client sends later. Nothing runs on the server.
/// </summary>
/// <remarks>
/// Observed with the real CLI (<c>tests/Fixtures/client_tools</c>): each MCP message comes as a <c>control_request</c>
/// of subtype <c>mcp_message</c> and is answered by a <c>control_response</c> that wraps the JSON-RPC answer. The CLI
/// runs calls of one answer at the same time only for tools marked read-only, so every function is listed as such:
/// the client runs them, and a round's calls must all reach it together. The handshake is three small messages, so
/// they are written here rather than through an MCP server library, which would want to own the transport.
/// </remarks>
internal sealed class ClientToolServer(IReadOnlyList<ClaudeTool> tools, Action<string> send)
{
    /// <summary>The MCP server's name; the model sees each function as <c>mcp__client__NAME</c>.</summary>
    public const string ServerName = "client";

    public const string ToolNamePrefix = "mcp__" + ServerName + "__";

    /// <summary>The longest function name the model can be offered: Anthropic's 64 characters, less the prefix.</summary>
    public const int MaxToolNameLength = 64 - 13;

    /// <summary>The <c>--mcp-config</c> that makes the CLI ask the host for the functions.</summary>
    public const string McpConfig = """{"mcpServers":{"client":{"type":"sdk","name":"client"}}}""";

    /// <summary>The <c>--allowedTools</c> value that lets the model call each function without a permission prompt.</summary>
    public static string AllowedTools(IEnumerable<ClaudeTool> functions) => string.Join(',', functions.Select(f => ToolNamePrefix + f.Name));

    /// <summary>Answers the CLI's MCP handshake and listing; false for any other line, a <c>tools/call</c> included.</summary>
    public bool TryAnswer(string line)
    {
        if (!line.Contains("\"mcp_message\"", StringComparison.Ordinal))
        {
            return false;
        }

        var parsed = Parse(line);
        if (parsed is not { RequestId: { } requestId, Request: { Subtype: "mcp_message", Message: { } message } })
        {
            return false;
        }

        JsonElement result;
        switch (message.Method)
        {
            case "tools/call":
                return false;
            case "initialize":
                result = JsonSerializer.SerializeToElement(
                    new McpInitializeResult(message.Params?.ProtocolVersion ?? "2025-06-18", new McpCapabilities(new McpToolsCapability()), new McpServerInfo(ServerName, "1")),
                    ClaudeBackendJsonContext.Default.McpInitializeResult);
                break;
            case "tools/list":
                var listed = tools.Select(t => new McpTool(t.Name, t.Description, t.Parameters, new McpToolAnnotations(ReadOnlyHint: true))).ToList();
                result = JsonSerializer.SerializeToElement(new McpToolList(listed), ClaudeBackendJsonContext.Default.McpToolList);
                break;
            default:
                // Notifications and anything newer: an empty success keeps the CLI from waiting on it.
                result = JsonSerializer.SerializeToElement(new McpEmptyResult(), ClaudeBackendJsonContext.Default.McpEmptyResult);
                break;
        }

        send(ResponseLine(requestId, message.Id, result));
        return true;
    }

    /// <summary>Answers a call the CLI waits for with the client's result; the model gets it as its <c>tool_result</c>.</summary>
    public void Answer(PendingToolCall call, ClaudeToolResult result)
    {
        // The API refuses an empty text block: a function that returns nothing gives no content.
        var content = new McpCallToolResult(result.Content.Length > 0 ? [new McpTextContent(result.Content)] : [], result.IsError);
        send(ResponseLine(call.RequestId, call.RpcId, JsonSerializer.SerializeToElement(content, ClaudeBackendJsonContext.Default.McpCallToolResult)));
    }

    /// <summary>The <c>tools/call</c> a line carries, or null.</summary>
    public static PendingToolCall? ToolCallOf(CliLine line) =>
        line is { Type: "control_request", RequestId: { } requestId, Request: { Subtype: "mcp_message", Message: { Method: "tools/call", Params: { Name: { } name } parameters } message } }
            ? new PendingToolCall(requestId, message.Id, new ClaudeToolCall(
                parameters.ToolUseId ?? requestId,
                name,
                parameters.Arguments.ValueKind == JsonValueKind.Object ? parameters.Arguments.GetRawText() : "{}"))
            : null;

    private static CliLine? Parse(string line)
    {
        try
        {
            return JsonSerializer.Deserialize(line, ClaudeBackendJsonContext.Default.CliLine);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string ResponseLine(string requestId, JsonElement rpcId, JsonElement result) =>
        JsonSerializer.Serialize(
            new CliControlResponseLine(new CliControlResponse(requestId, new CliMcpResponse(new McpJsonRpcResponse(
                rpcId.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? null : rpcId, result)))),
            ClaudeBackendJsonContext.Default.CliControlResponseLine);
}

/// <summary>A <c>tools/call</c> the CLI waits on: how to answer it, and the call as the client sees it.</summary>
internal sealed record PendingToolCall(string RequestId, JsonElement RpcId, ClaudeToolCall Call);

internal sealed record CliControlResponseLine(CliControlResponse Response)
{
    public string Type => "control_response";
}

internal sealed record CliControlResponse([property: JsonPropertyName("request_id")] string RequestId, CliMcpResponse Response)
{
    public string Subtype => "success";
}

internal sealed record CliMcpResponse([property: JsonPropertyName("mcp_response")] McpJsonRpcResponse McpResponse);

internal sealed record McpJsonRpcResponse(JsonElement? Id, JsonElement Result)
{
    public string Jsonrpc => "2.0";
}

internal sealed record McpInitializeResult(string ProtocolVersion, McpCapabilities Capabilities, McpServerInfo ServerInfo);

internal sealed record McpCapabilities(McpToolsCapability Tools);

internal sealed record McpToolsCapability;

internal sealed record McpServerInfo(string Name, string Version);

internal sealed record McpToolList(IReadOnlyList<McpTool> Tools);

internal sealed record McpTool(string Name, string? Description, JsonElement InputSchema, McpToolAnnotations Annotations);

internal sealed record McpToolAnnotations(bool ReadOnlyHint);

internal sealed record McpCallToolResult(IReadOnlyList<McpTextContent> Content, bool IsError);

internal sealed record McpTextContent(string Text)
{
    public string Type => "text";
}

internal sealed record McpEmptyResult;
