using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClaudeProxy.Transforms.Ollama;

// Ollama's native API as clients send and read it (shared/docs/ollama-api.md §1). Unknown request fields are reported as ignored.

internal sealed record OllamaChatRequest(
    string? Model,
    List<OllamaMessage>? Messages,
    bool? Stream,
    JsonElement Format,
    JsonElement KeepAlive,
    List<FunctionTool>? Tools,
    string? Id,
    string? User,
    JsonElement Options,
    JsonElement Think) : DialectRequestBody;

internal sealed record OllamaGenerateRequest(
    string? Model,
    string? Prompt,
    string? System,
    List<string>? Images,
    bool? Stream,
    JsonElement Format,
    JsonElement KeepAlive,
    string? Id,
    string? User,
    JsonElement Options,
    JsonElement Think,
    string? Suffix,
    bool? Raw,
    string? Template,
    JsonElement Context) : DialectRequestBody;

internal sealed record OllamaMessage(
    string? Role,
    string? Content,
    List<string>? Images,
    List<OllamaToolCall>? ToolCalls = null,
    string? ToolName = null,
    string? ToolCallId = null);

/// <summary>A call of a function; Ollama's arguments are a JSON object, not its text.</summary>
internal sealed record OllamaToolCall(string? Id, OllamaFunctionCall? Function);

internal sealed record OllamaFunctionCall(string? Name, JsonElement Arguments, int? Index = null);

internal sealed record OllamaChatChunk(
    string Model,
    DateTimeOffset CreatedAt,
    OllamaResponseMessage Message,
    bool Done,
    string? DoneReason = null) : OllamaMetrics;

internal sealed record OllamaGenerateChunk(
    string Model,
    DateTimeOffset CreatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Response,
    string? Thinking,
    bool Done,
    string? DoneReason = null) : OllamaMetrics;

internal sealed record OllamaResponseMessage(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Content,
    string? Thinking = null,
    IReadOnlyList<OllamaToolCall>? ToolCalls = null)
{
    public string Role => "assistant";
}

/// <summary>The final chunk's metrics: integers in nanoseconds and tokens, left out when unknown (as Ollama does).</summary>
internal abstract record OllamaMetrics
{
    public long? TotalDuration { get; init; }

    public long? LoadDuration { get; init; }

    public long? PromptEvalCount { get; init; }

    public long? PromptEvalDuration { get; init; }

    public long? EvalCount { get; init; }

    public long? EvalDuration { get; init; }
}

internal sealed record OllamaError([property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Error);

internal sealed record OllamaShowRequest(string? Model, string? Name);

internal sealed record OllamaModelEntry(
    string Name,
    string Model,
    DateTimeOffset ModifiedAt,
    long Size,
    string Digest,
    OllamaModelDetails Details,
    DateTimeOffset? ExpiresAt = null,
    long? SizeVram = null,
    int? ContextLength = null);

/// <summary><c>/api/tags</c> and <c>/api/ps</c>: the models (Ollama's merged with the Claude ones).</summary>
internal sealed record OllamaModelList(IReadOnlyList<OllamaModelEntry> Models);

internal sealed record OllamaModelDetails(
    string ParentModel,
    string Format,
    string Family,
    IReadOnlyList<string> Families,
    string ParameterSize,
    string QuantizationLevel);

internal sealed record OllamaShowResponse(
    string Modelfile,
    string Parameters,
    string Template,
    OllamaModelDetails Details,
    [property: JsonPropertyName("model_info")] IReadOnlyDictionary<string, JsonElement> ModelInfo,
    IReadOnlyList<string> Capabilities,
    DateTimeOffset ModifiedAt);

internal sealed record OllamaVersion(string Version);
