using System.Buffers;
using System.Net;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms;

/// <summary>
/// One client dialect of a Claude turn (Ollama chat, Ollama generate, OpenAI chat): how its request becomes a
/// <see cref="ClaudeTurnRequest"/> and how the turn's events become the stream or body its clients read.
/// </summary>
public abstract class ClaudeDialect
{
    /// <summary>The name used in route metadata, e.g. <c>ollama-chat</c>.</summary>
    public abstract string Name { get; }

    public abstract ErrorStyle ErrorStyle { get; }

    /// <summary>The media type of a streamed answer (<c>application/x-ndjson</c>, <c>text/event-stream</c>).</summary>
    public abstract string StreamContentType { get; }

    /// <summary>The wire records of its request, its whole answer and a streamed chunk, for the API's documentation.</summary>
    public abstract DialectWireTypes WireTypes { get; }

    /// <summary>Parses the client's body. Returns null with <paramref name="immediateAnswer"/> set when no model run is needed.</summary>
    /// <exception cref="DialectRequestException">The request is invalid.</exception>
    internal abstract DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer);

    internal abstract AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp);

    /// <summary>
    /// Completes a request once its caller is known (<see cref="ClaudeTurnRequest.Owner"/>): what a dialect keeps per
    /// caller, such as a previous response, is looked up here.
    /// </summary>
    /// <exception cref="DialectRequestException">The request names something the caller does not have.</exception>
    internal virtual ValueTask<DialectRequest> WithCallerAsync(DialectRequest request, DialectServices services, CancellationToken cancellationToken) =>
        ValueTask.FromResult(request);
}

/// <summary>What the dialects use beyond a request: the clock, and what they keep between requests.</summary>
public sealed record DialectServices(TimeProvider TimeProvider, OpenAi.IResponsesHistory ResponsesHistory);

/// <summary>The wire records of a dialect, serialized with <see cref="ApiWireTypes.JsonResolver"/>.</summary>
public sealed record DialectWireTypes(Type Request, Type Answer, Type StreamChunk);

/// <summary>A dialect's request body: what it reads is its own; what it does not read is kept to be named.</summary>
internal abstract record DialectRequestBody
{
    /// <summary>Fields the gateway does not read: the answer is made without them (<see cref="RequestFields.Unknown"/>). A
    /// setter, not init: the JSON source generator sets init properties as constructor arguments, which extension data cannot be.</summary>
    [System.Text.Json.Serialization.JsonExtensionData]
    public Dictionary<string, System.Text.Json.JsonElement>? Unknown { get; set; }
}

/// <summary>A client's request for a Claude turn and what its answer must look like.</summary>
/// <param name="Turn">The turn for the backend.</param>
/// <param name="RequestedModel">The model name exactly as the client sent it: responses echo it.</param>
/// <param name="Stream">Whether the client wants a stream.</param>
/// <param name="IncludeUsage">OpenAI's <c>stream_options.include_usage</c>.</param>
/// <param name="PreviousResponseId">The Responses API's <c>previous_response_id</c>: the response the request goes on from.</param>
/// <param name="ShowThinking">Whether the model's thinking goes to the client: only when it asked for thinking.</param>
/// <param name="Store">Whether the answer is kept for a later request to go on from (the Responses API's <c>store</c>).</param>
/// <param name="Ignored">The request's fields the answer is made without (<see cref="RequestFields.IgnoredHeader"/>).</param>
internal sealed record DialectRequest(
    ClaudeTurnRequest Turn,
    string RequestedModel,
    bool Stream,
    bool IncludeUsage = false,
    string? PreviousResponseId = null,
    bool ShowThinking = false,
    bool Store = true,
    IReadOnlyList<string>? Ignored = null);

/// <summary>The client's request cannot be served as sent; the message goes back in the client's envelope.</summary>
/// <param name="param">The request field at fault, for OpenAI's <c>error.param</c>.</param>
internal sealed class DialectRequestException(string message, HttpStatusCode status = HttpStatusCode.BadRequest, string? param = null) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;

    public string? Param { get; } = param;
}

/// <summary>Writes one turn's answer in a dialect, as a stream of frames or as one body.</summary>
internal abstract class AnswerWriter(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
{
    protected DialectRequest Request { get; } = request;

    protected TimeProvider TimeProvider { get; } = timeProvider;

    /// <summary>Time since the gateway received the request.</summary>
    protected TimeSpan Elapsed => TimeProvider.GetElapsedTime(startTimestamp);

    public void WriteStreamEvent(ClaudeStreamEvent streamEvent, IBufferWriter<byte> output)
    {
        switch (streamEvent)
        {
            case TextDelta text:
                WriteText(text.Text, output);
                break;
            case ThinkingDelta thinking when Request.ShowThinking:
                WriteThinking(thinking.Text, output);
                break;
            case ToolCallRequested call:
                WriteToolCall(call, output);
                break;
            case TurnCompleted completed:
                WriteCompleted(completed.Result, output);
                break;
            case TurnFailed failed:
                WriteStreamError(failed.Error, output);
                break;
        }
    }

    protected abstract void WriteText(string text, IBufferWriter<byte> output);

    protected abstract void WriteThinking(string thinking, IBufferWriter<byte> output);

    /// <summary>A call of the client's functions, as the dialect streams it; dialects without functions never get one.</summary>
    protected virtual void WriteToolCall(ToolCallRequested call, IBufferWriter<byte> output)
    {
    }

    /// <summary>The final frame(s) of a stream: Ollama's <c>done:true</c> chunk, OpenAI's finish chunk and <c>[DONE]</c>.</summary>
    protected abstract void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output);

    /// <summary>An error after the stream started: the last thing the client reads.</summary>
    protected abstract void WriteStreamError(ClaudeBackendError error, IBufferWriter<byte> output);

    /// <summary>The whole answer as one JSON body, for <c>stream:false</c>.</summary>
    public abstract void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output);
}

internal static class DialectJson
{
    /// <summary>Parses a client body whatever its Content-Type (curl -d sends form encoding), as Ollama does.</summary>
    public static T Deserialize<T>(byte[] body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
        where T : class
    {
        if (body.Length == 0)
        {
            throw new DialectRequestException("missing request body");
        }

        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(body, typeInfo)
                ?? throw new DialectRequestException("missing request body");
        }
        catch (System.Text.Json.JsonException exception)
        {
            throw new DialectRequestException($"invalid JSON in request body: {exception.Message}");
        }
        catch (InvalidOperationException exception)
        {
            // System.Text.Json reports a string that is not valid UTF-8 this way, not as a JsonException.
            throw new DialectRequestException($"invalid text in request body: {exception.Message}");
        }
    }

    /// <summary>A part of a client body already parsed (a content block, an input item), read as <typeparamref name="T"/>.</summary>
    public static T Deserialize<T>(System.Text.Json.JsonElement element, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo, string what)
        where T : class
    {
        if (element.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            throw new DialectRequestException($"{what} must be an object");
        }

        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(element, typeInfo)!;
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or InvalidOperationException)
        {
            throw new DialectRequestException($"invalid {what}: {exception.Message}");
        }
    }

    /// <summary>The client's system texts as one system prompt; null when there are none.</summary>
    public static string? SystemPrompt(IEnumerable<string> systemParts)
    {
        var parts = systemParts.Where(p => !string.IsNullOrWhiteSpace(p)).ToList();
        return parts.Count == 0 ? null : string.Join("\n\n", parts);
    }

    /// <summary>The longest conversation id taken: a name for a conversation, which the logs and the stores hold.</summary>
    private const int MaxConversationIdLength = 1024;

    /// <summary>An id that keeps a conversation: the original server's <c>id</c>, else <c>user</c>.</summary>
    /// <exception cref="DialectRequestException">The id holds a control character (it would forge lines in the logs) or is over 1,024 characters.</exception>
    public static string? ConversationId(string? id, string? user)
    {
        var (conversation, field) = !string.IsNullOrWhiteSpace(id) ? (id, "id") : !string.IsNullOrWhiteSpace(user) ? (user, "user") : (null, null);
        if (conversation is not null && (conversation.Length > MaxConversationIdLength || conversation.Any(char.IsControl)))
        {
            throw new DialectRequestException($"{field}: a conversation id is at most {MaxConversationIdLength} characters, none of them a control character", param: field);
        }

        return conversation;
    }
}
