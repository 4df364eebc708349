using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClaudeProxy.Transforms.OpenAi;

// The OpenAI Responses API (POST /v1/responses) as the OpenAI SDKs, Codex and Microsoft.Extensions.AI send and read it.

/// <summary><see cref="Input"/> is a string or a list of items; <see cref="ToolChoice"/> a string or a function.</summary>
internal sealed record ResponsesRequest(
    string? Model,
    JsonElement Input,
    string? Instructions,
    bool? Stream,
    List<ResponsesTool>? Tools,
    JsonElement ToolChoice,
    bool? ParallelToolCalls,
    string? PreviousResponseId,
    bool? Store,
    long? MaxOutputTokens,
    ResponsesReasoning? Reasoning,
    ResponsesTextConfig? Text,
    int? TopLogprobs,
    JsonElement Temperature,
    JsonElement TopP) : DialectRequestBody;

/// <summary><c>reasoning</c>: its <c>effort</c> (<c>none</c> … <c>xhigh</c>).</summary>
internal sealed record ResponsesReasoning(string? Effort);

/// <summary><c>text</c>: its <c>format</c>, <c>{"type":"text"}</c>, <c>json_object</c> or <c>json_schema</c> with the schema flat.</summary>
internal sealed record ResponsesTextConfig(JsonElement Format);

/// <summary>A tool of the request: a function, flat (not nested under <c>function</c> as in chat completions).</summary>
internal sealed record ResponsesTool(string? Type, string? Name, string? Description, JsonElement Parameters);

/// <summary>An input item: a message (with or without <c>type</c>), a function call, or a function call's output.</summary>
internal sealed record ResponsesInputItem(
    string? Type,
    string? Role,
    JsonElement Content,
    string? CallId,
    string? Name,
    string? Arguments,
    JsonElement Output);

internal sealed record ResponsesIncompleteDetails(string Reason);

/// <summary>The response object: the whole answer, and what the stream's lifecycle events carry.</summary>
internal sealed record ResponsesResponse(
    string Id,
    long CreatedAt,
    string Status,
    string Model,
    IReadOnlyList<ResponsesOutputItem> Output,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ResponsesUsage? Usage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? PreviousResponseId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Instructions,
    bool ParallelToolCalls = true)
{
    [JsonPropertyOrder(-1)]
    public string Object => "response";

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public ResponsesError? Error { get; init; }

    /// <summary>Why a response is <c>incomplete</c>: <c>max_output_tokens</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public ResponsesIncompleteDetails? IncompleteDetails { get; init; }

    public IReadOnlyList<object> Tools => [];

    public string ToolChoice => "auto";

    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
}

/// <summary>Why a response failed: a stable code and the message.</summary>
internal sealed record ResponsesError(string Code, string Message);

/// <summary>An output item: <c>message</c>, <c>function_call</c> or <c>reasoning</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(ResponsesMessageItem), "message")]
[JsonDerivedType(typeof(ResponsesFunctionCallItem), "function_call")]
[JsonDerivedType(typeof(ResponsesReasoningItem), "reasoning")]
internal abstract record ResponsesOutputItem(string Id);

internal sealed record ResponsesMessageItem(string Id, string Status, IReadOnlyList<ResponsesOutputText> Content) : ResponsesOutputItem(Id)
{
    public string Role => "assistant";
}

internal sealed record ResponsesOutputText([property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Text)
{
    [JsonPropertyOrder(-1)]
    public string Type => "output_text";

    public IReadOnlyList<object> Annotations => [];
}

internal sealed record ResponsesFunctionCallItem(string Id, string CallId, string Name, string Arguments, string Status) : ResponsesOutputItem(Id);

internal sealed record ResponsesReasoningItem(string Id, IReadOnlyList<ResponsesSummaryText> Summary) : ResponsesOutputItem(Id);

internal sealed record ResponsesSummaryText(string Text)
{
    [JsonPropertyOrder(-1)]
    public string Type => "summary_text";
}

internal sealed record ResponsesUsage(long InputTokens, long OutputTokens, long TotalTokens, ResponsesInputTokensDetails InputTokensDetails, ResponsesOutputTokensDetails OutputTokensDetails);

internal sealed record ResponsesInputTokensDetails(long CachedTokens);

internal sealed record ResponsesOutputTokensDetails(long ReasoningTokens);

/// <summary>One streamed event; which members it carries depends on its <see cref="Type"/>.</summary>
internal sealed record ResponsesStreamEvent(string Type, long SequenceNumber)
{
    public ResponsesResponse? Response { get; init; }

    public int? OutputIndex { get; init; }

    public ResponsesOutputItem? Item { get; init; }

    public string? ItemId { get; init; }

    public int? ContentIndex { get; init; }

    public int? SummaryIndex { get; init; }

    public ResponsesOutputText? Part { get; init; }

    public string? Delta { get; init; }

    public string? Text { get; init; }

    public string? Arguments { get; init; }

    public string? Code { get; init; }

    public string? Message { get; init; }
}
