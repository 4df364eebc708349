using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClaudeProxy.Transforms.Anthropic;

// The Anthropic Messages API as the Anthropic SDKs and Claude Code send and read it. Unknown request fields are reported as ignored.

/// <summary>
/// <see cref="System"/> is a string or text blocks; a message's <see cref="AnthropicMessage.Content"/> a string or
/// blocks (<c>text</c>, <c>image</c>, <c>tool_use</c>, <c>tool_result</c>, <c>thinking</c>).
/// </summary>
internal sealed record AnthropicMessagesRequest(
    string? Model,
    List<AnthropicMessage>? Messages,
    JsonElement System,
    bool? Stream,
    long? MaxTokens,
    List<AnthropicTool>? Tools,
    AnthropicToolChoice? ToolChoice,
    AnthropicMetadata? Metadata,
    AnthropicThinkingConfig? Thinking,
    List<string>? StopSequences,
    AnthropicOutputConfig? OutputConfig,
    JsonElement Temperature,
    JsonElement TopP,
    JsonElement TopK) : DialectRequestBody;

/// <summary><c>output_config</c>: the effort level (<c>low</c> … <c>max</c>).</summary>
internal sealed record AnthropicOutputConfig(string? Effort);

/// <summary><c>thinking</c>: <c>{"type":"enabled","budget_tokens":N}</c>, <c>adaptive</c> or <c>disabled</c>.</summary>
internal sealed record AnthropicThinkingConfig(string? Type);

internal sealed record AnthropicMessage(string? Role, JsonElement Content);

internal sealed record AnthropicMetadata(string? UserId);

/// <summary>A function the client offers; a <c>type</c> names one of Anthropic's own server tools instead.</summary>
internal sealed record AnthropicTool(string? Type, string? Name, string? Description, JsonElement InputSchema);

internal sealed record AnthropicToolChoice(string? Type, string? Name, bool? DisableParallelToolUse);

/// <summary>A request content block, read as far as the gateway needs it.</summary>
internal sealed record AnthropicBlock(
    string? Type,
    string? Text,
    AnthropicImageSource? Source,
    string? Id,
    string? Name,
    JsonElement Input,
    string? ToolUseId,
    JsonElement Content,
    bool? IsError);

internal sealed record AnthropicImageSource(string? Type, string? MediaType, string? Data);

/// <summary>The whole answer, or the message of a stream's <c>message_start</c>.</summary>
internal sealed record AnthropicResponse(
    string Id,
    string Model,
    IReadOnlyList<AnthropicContent> Content,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? StopReason,
    AnthropicUsage Usage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? StopSequence = null)
{
    [JsonPropertyOrder(-1)]
    public string Type => "message";

    public string Role => "assistant";
}

/// <summary>An answer's content block: <c>text</c>, <c>thinking</c> or <c>tool_use</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(AnthropicText), "text")]
[JsonDerivedType(typeof(AnthropicThinking), "thinking")]
[JsonDerivedType(typeof(AnthropicToolUse), "tool_use")]
internal abstract record AnthropicContent;

internal sealed record AnthropicText([property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Text) : AnthropicContent;

/// <summary>The CLI does not pass the thinking's signature on, so it is empty: a client sends it back, the gateway ignores it.</summary>
internal sealed record AnthropicThinking([property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Thinking) : AnthropicContent
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string Signature => "";
}

internal sealed record AnthropicToolUse(string Id, string Name, JsonElement Input) : AnthropicContent;

internal sealed record AnthropicUsage(
    long InputTokens,
    long OutputTokens,
    long CacheReadInputTokens = 0,
    long CacheCreationInputTokens = 0);

// The stream's events, each an SSE frame whose event name is its type.

internal sealed record AnthropicMessageStart(AnthropicResponse Message)
{
    [JsonPropertyOrder(-1)]
    public string Type => "message_start";
}

internal sealed record AnthropicContentBlockStart(int Index, AnthropicContent ContentBlock)
{
    [JsonPropertyOrder(-1)]
    public string Type => "content_block_start";
}

internal sealed record AnthropicContentBlockDelta(int Index, AnthropicDelta Delta)
{
    [JsonPropertyOrder(-1)]
    public string Type => "content_block_delta";
}

[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(AnthropicTextDelta), "text_delta")]
[JsonDerivedType(typeof(AnthropicThinkingDelta), "thinking_delta")]
[JsonDerivedType(typeof(AnthropicInputJsonDelta), "input_json_delta")]
internal abstract record AnthropicDelta;

internal sealed record AnthropicTextDelta(string Text) : AnthropicDelta;

internal sealed record AnthropicThinkingDelta(string Thinking) : AnthropicDelta;

internal sealed record AnthropicInputJsonDelta(string PartialJson) : AnthropicDelta;

internal sealed record AnthropicContentBlockStop(int Index)
{
    [JsonPropertyOrder(-1)]
    public string Type => "content_block_stop";
}

internal sealed record AnthropicMessageDelta(AnthropicStopDelta Delta, AnthropicUsage Usage)
{
    [JsonPropertyOrder(-1)]
    public string Type => "message_delta";
}

internal sealed record AnthropicStopDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? StopReason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? StopSequence = null);

internal sealed record AnthropicErrorBody(AnthropicError Error)
{
    [JsonPropertyOrder(-1)]
    public string Type => "error";
}

internal sealed record AnthropicError(string Type, string Message);

/// <summary><c>GET /v1/models</c> as the Anthropic SDKs read it.</summary>
internal sealed record AnthropicModelList(IReadOnlyList<AnthropicModel> Data, bool HasMore, string? FirstId, string? LastId);

internal sealed record AnthropicModel(string Id, string DisplayName, DateTimeOffset CreatedAt)
{
    [JsonPropertyOrder(-1)]
    public string Type => "model";
}

/// <summary>What <c>POST /v1/messages/count_tokens</c> answers.</summary>
internal sealed record AnthropicTokenCount(long InputTokens);
