using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace ClaudeProxy.ClaudeBackend.StreamJson;

// The parts of the CLI's stream-json output that the gateway reads. Everything else on a line is skipped
// by the deserializer. Field names are the CLI's own (observed with 2.1.197, see shared/claude-cli).

internal sealed record CliLine(
    string? Type,
    string? Subtype,
    CliStreamEvent? Event,
    CliMessage? Message,
    [property: JsonPropertyName("is_error")] bool? IsError,
    [property: JsonPropertyName("api_error_status")] int? ApiErrorStatus,
    string? Result,
    [property: JsonPropertyName("stop_reason")] string? StopReason,
    [property: JsonPropertyName("session_id")] string? SessionId,
    [property: JsonPropertyName("total_cost_usd")] double? TotalCostUsd,
    CliUsage? Usage,
    [property: JsonPropertyName("modelUsage")] Dictionary<string, CliModelUsage>? ModelUsage,
    [property: JsonPropertyName("duration_ms")] long? DurationMs,
    [property: JsonPropertyName("duration_api_ms")] long? DurationApiMs,
    [property: JsonPropertyName("ttft_ms")] long? TtftMs,
    [property: JsonPropertyName("time_to_request_ms")] long? TimeToRequestMs,
    string[]? Errors,
    string? Model,
    [property: JsonPropertyName("retry_delay_ms")] double? RetryDelayMs,
    [property: JsonPropertyName("rate_limit_info")] CliRateLimitInfo? RateLimitInfo,
    [property: JsonPropertyName("request_id")] string? RequestId,
    CliIncomingControl? Request,
    [property: JsonPropertyName("structured_output")] JsonElement? StructuredOutput = null)
{
    /// <summary>The line parsed, when it is a <c>result</c> line (a turn's last); null for any other line.</summary>
    public static CliLine? AsResult(string line)
    {
        // A "type":"result" inside a string value would be escaped, so this cheap test only lets result lines through.
        if (!line.Contains("\"type\":\"result\"", StringComparison.Ordinal))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(line, ClaudeBackendJsonContext.Default.CliLine) is { Type: "result" } result ? result : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A <c>rate_limit_event</c> line: <c>allowed</c>, <c>allowed_warning</c> (still served) or <c>rejected</c>.</summary>
internal sealed record CliRateLimitInfo(
    string? Status,
    long? ResetsAt,
    string? RateLimitType,
    double? Utilization,
    bool? IsUsingOverage,
    string? OverageStatus,
    long? OverageResetsAt);

internal sealed record CliStreamEvent(
    string? Type,
    CliDelta? Delta,
    CliMessage? Message,
    [property: JsonPropertyName("content_block")] CliContentBlock? ContentBlock,
    CliUsage? Usage);

internal sealed record CliDelta(string? Type, string? Text, string? Thinking, [property: JsonPropertyName("stop_reason")] string? StopReason);

internal sealed record CliMessage(string? Id, string? Model, CliContentBlock[]? Content, CliUsage? Usage, [property: JsonPropertyName("stop_reason")] string? StopReason);

internal sealed record CliContentBlock(
    string? Type,
    string? Text,
    string? Thinking,
    string? Id,
    string? Name,
    [property: JsonPropertyName("tool_use_id")] string? ToolUseId);

/// <summary>
/// A control request the CLI sends the host on stdout. With the client's functions served in the pipe (an <c>sdk</c>
/// MCP server, <see cref="Cli.ClientToolServer"/>) it carries MCP messages: the handshake, and <c>tools/call</c>, which
/// the CLI then waits for (recorded in <c>tests/Fixtures/client_tools</c>).
/// </summary>
internal sealed record CliIncomingControl(
    string? Subtype,
    [property: JsonPropertyName("server_name")] string? ServerName,
    CliMcpMessage? Message);

internal sealed record CliMcpMessage(string? Method, JsonElement Id, CliMcpParams? Params);

internal sealed record CliMcpParams(
    string? Name,
    JsonElement Arguments,
    [property: JsonPropertyName("_meta")] Dictionary<string, JsonElement>? Meta,
    [property: JsonPropertyName("protocolVersion")] string? ProtocolVersion)
{
    /// <summary>The id of the model's <c>tool_use</c> block that a <c>tools/call</c> runs.</summary>
    public string? ToolUseId => Meta?.GetValueOrDefault("claudecode/toolUseId") is { ValueKind: JsonValueKind.String } id ? id.GetString() : null;
}

internal sealed record CliUsage(
    [property: JsonPropertyName("input_tokens")] long InputTokens,
    [property: JsonPropertyName("output_tokens")] long OutputTokens,
    [property: JsonPropertyName("cache_read_input_tokens")] long CacheReadInputTokens,
    [property: JsonPropertyName("cache_creation_input_tokens")] long CacheCreationInputTokens)
{
    public Contract.ClaudeUsage ToUsage() => new(InputTokens, OutputTokens, CacheReadInputTokens, CacheCreationInputTokens);
}

internal sealed record CliModelUsage(
    long InputTokens,
    long OutputTokens,
    long CacheReadInputTokens,
    long CacheCreationInputTokens);

/// <summary>A user line for <c>--input-format stream-json</c>.</summary>
internal sealed record CliUserLine(CliUserMessage Message)
{
    public string Type => "user";
}

internal sealed record CliUserMessage(IReadOnlyList<CliInputBlock> Content)
{
    public string Role => "user";
}

/// <summary>A content block of a user line or of a written session: text, an image, or a call of a client function and its result.</summary>
internal sealed record CliInputBlock(
    string Type,
    string? Text = null,
    CliImageSource? Source = null,
    string? Id = null,
    string? Name = null,
    JsonElement? Input = null,
    [property: JsonPropertyName("tool_use_id")] string? ToolUseId = null,
    string? Content = null,
    [property: JsonPropertyName("is_error")] bool? IsError = null);

internal sealed record CliImageSource(
    [property: JsonPropertyName("media_type")] string MediaType,
    string Data)
{
    public string Type => "base64";
}

/// <summary>
/// A control request on stdin (observed with 2.1.197, see shared/claude-cli and <c>tests/Fixtures/turn_settings</c>):
/// <c>initialize</c> sets a waiting process's system prompt and output schema; <c>interrupt</c> stops the turn being
/// answered and leaves the process ready for the next one; <c>apply_flag_settings</c> and <c>set_max_thinking_tokens</c>
/// set the effort, the output limit and thinking for the turns that follow.
/// </summary>
internal sealed record CliControlRequest(
    [property: JsonPropertyName("request_id")] string RequestId,
    CliControl Request)
{
    /// <summary>The variable the CLI reads its output-token limit from, for every API request.</summary>
    public const string MaxOutputTokensVariable = "CLAUDE_CODE_MAX_OUTPUT_TOKENS";

    public string Type => "control_request";

    /// <param name="jsonSchema">The schema of a structured answer: the CLI offers the model a <c>StructuredOutput</c> tool.</param>
    public static string Initialize(string? systemPrompt, JsonElement? jsonSchema = null) =>
        ToLine(new CliControl("initialize", systemPrompt, jsonSchema));

    public static string Interrupt() => ToLine(new CliControl("interrupt"));

    /// <summary>Sets the effort and the output limit; null goes back to the CLI's default (an empty variable does for the limit).</summary>
    public static string ApplyFlagSettings(string? effort, int? maxOutputTokens) => ToLine("apply_flag_settings", new JsonObject
    {
        ["settings"] = new JsonObject
        {
            // A null removes the key from the flag settings; a missing key would keep the previous turn's value.
            ["effortLevel"] = effort,
            ["env"] = new JsonObject { [MaxOutputTokensVariable] = maxOutputTokens?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "" },
        },
    });

    /// <summary>0 turns thinking off; null goes back to the CLI's default (adaptive).</summary>
    public static string SetMaxThinkingTokens(int? tokens) =>
        ToLine("set_max_thinking_tokens", new JsonObject { ["max_thinking_tokens"] = tokens });

    private static string ToLine(CliControl control) =>
        JsonSerializer.Serialize(new CliControlRequest(control.Subtype, control), ClaudeBackendJsonContext.Default.CliControlRequest);

    /// <summary>A request whose fields must be written even when null (which means "back to the default").</summary>
    private static string ToLine(string subtype, JsonObject request)
    {
        request.Insert(0, "subtype", subtype);
        return new JsonObject { ["type"] = "control_request", ["request_id"] = subtype, ["request"] = request }.ToJsonString();
    }
}

internal sealed record CliControl(
    string Subtype,
    [property: JsonPropertyName("systemPrompt")] string? SystemPrompt = null,
    [property: JsonPropertyName("jsonSchema")] JsonElement? JsonSchema = null);
