using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClaudeProxy.Transforms.OpenAi;

// The OpenAI Chat Completions API as the OpenAI SDKs send and read it (shared/docs/ollama-api.md §2.1, §4.5).

internal sealed record OpenAiChatRequest(
    string? Model,
    List<OpenAiMessage>? Messages,
    bool? Stream,
    OpenAiStreamOptions? StreamOptions,
    List<FunctionTool>? Tools,
    JsonElement ToolChoice,
    bool? ParallelToolCalls,
    JsonElement ResponseFormat,
    string? User,
    string? Id,
    long? MaxTokens,
    long? MaxCompletionTokens,
    JsonElement Stop,
    string? ReasoningEffort,
    int? N,
    bool? Logprobs,
    int? TopLogprobs,
    JsonElement Audio,
    List<string>? Modalities,
    JsonElement Temperature,
    JsonElement TopP,
    JsonElement Seed,
    JsonElement FrequencyPenalty,
    JsonElement PresencePenalty,
    JsonElement LogitBias) : DialectRequestBody;

internal sealed record OpenAiStreamOptions(bool? IncludeUsage);

/// <summary><see cref="Content"/> is a string or an array of parts (<c>text</c>, <c>image_url</c>).</summary>
internal sealed record OpenAiMessage(string? Role, JsonElement Content, List<OpenAiToolCall>? ToolCalls, string? ToolCallId);

/// <summary>A call of a function; <see cref="OpenAiFunctionCall.Arguments"/> is the text of a JSON object.</summary>
internal sealed record OpenAiToolCall(string? Id, OpenAiFunctionCall? Function)
{
    public string Type => "function";
}

internal sealed record OpenAiFunctionCall(string? Name, string? Arguments);

/// <summary>A streamed call: the first delta names it, the next carries its arguments.</summary>
internal sealed record OpenAiToolCallDelta(int Index, string? Id, string? Type, OpenAiFunctionCall Function);

internal sealed record OpenAiChatCompletion(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<OpenAiChoice> Choices,
    OpenAiUsage Usage)
{
    public string Object => "chat.completion";

    public string SystemFingerprint => "fp_claudeproxy";
}

internal sealed record OpenAiChoice(
    int Index,
    OpenAiResponseMessage Message,
    string FinishReason);

internal sealed record OpenAiResponseMessage(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content,
    string? Reasoning = null,
    IReadOnlyList<OpenAiToolCall>? ToolCalls = null)
{
    public string Role => "assistant";
}

internal sealed record OpenAiChatChunk(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<OpenAiChunkChoice> Choices,
    OpenAiUsage? Usage = null)
{
    public string Object => "chat.completion.chunk";

    public string SystemFingerprint => "fp_claudeproxy";
}

internal sealed record OpenAiChunkChoice(
    int Index,
    OpenAiDelta Delta,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

internal sealed record OpenAiDelta(string? Role = null, string? Content = null, string? Reasoning = null, IReadOnlyList<OpenAiToolCallDelta>? ToolCalls = null);

internal sealed record OpenAiUsage(
    long PromptTokens,
    long CompletionTokens,
    long TotalTokens,
    OpenAiPromptTokensDetails? PromptTokensDetails = null);

internal sealed record OpenAiPromptTokensDetails(long CachedTokens);

internal sealed record OpenAiErrorBody(OpenAiError Error);

internal sealed record OpenAiError(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code = null);

internal sealed record OpenAiModelList(IReadOnlyList<OpenAiModel> Data)
{
    public string Object => "list";
}

internal sealed record OpenAiModel(string Id, long Created, string OwnedBy)
{
    public string Object => "model";
}
