using System.Text.Json;
using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend;

[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ClaudeTurnRequest))]
[JsonSerializable(typeof(ClaudeMessage))]
[JsonSerializable(typeof(ClaudeBackendErrorBody))]
[JsonSerializable(typeof(ClaudeStreamEvent))]
[JsonSerializable(typeof(CliLine))]
[JsonSerializable(typeof(CliUserLine))]
[JsonSerializable(typeof(CliControlRequest))]
[JsonSerializable(typeof(ConversationFile))]
[JsonSerializable(typeof(SessionEntry))]
[JsonSerializable(typeof(CliControlResponseLine))]
[JsonSerializable(typeof(McpInitializeResult))]
[JsonSerializable(typeof(McpToolList))]
[JsonSerializable(typeof(McpCallToolResult))]
[JsonSerializable(typeof(McpEmptyResult))]
internal sealed partial class ClaudeBackendJsonContext : JsonSerializerContext;
