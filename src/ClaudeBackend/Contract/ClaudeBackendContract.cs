using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// The backend's contract, <c>POST /v1/turns</c>, in its two forms. In process, the request transform hands the
/// <see cref="ClaudeTurnRequest"/> over in <see cref="HttpRequestMessage.Options"/> and the answer carries the typed
/// events (<see cref="ClaudeTurnContent"/>). Where bytes cross a socket, the request is its JSON body and the answer is
/// NDJSON, one event a line, or an error status with a <see cref="ClaudeBackendErrorBody"/>.
/// </summary>
public static class ClaudeBackendContract
{
    public const string EventsMediaType = "application/x-ndjson";

    /// <summary>Where the in-process hop carries the typed turn request.</summary>
    public static readonly HttpRequestOptionsKey<ClaudeTurnRequest> TurnRequest = new("ClaudeProxy.ClaudeTurnRequest");

    public static byte[] Serialize(ClaudeTurnRequest request) =>
        JsonSerializer.SerializeToUtf8Bytes(request, ClaudeBackendJsonContext.Default.ClaudeTurnRequest);

    /// <summary>A message as the contract writes it, for a store that keeps a conversation's.</summary>
    public static byte[] SerializeMessage(ClaudeMessage message) =>
        JsonSerializer.SerializeToUtf8Bytes(message, ClaudeBackendJsonContext.Default.ClaudeMessage);

    /// <summary>A message written by <see cref="SerializeMessage"/>.</summary>
    /// <exception cref="JsonException">It is not one.</exception>
    public static ClaudeMessage ParseMessage(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ClaudeBackendJsonContext.Default.ClaudeMessage) ?? throw new JsonException("null is not a message");

    /// <summary>The request's JSON body; null with the reason when it is not a turn request.</summary>
    public static ClaudeTurnRequest? ParseRequest(ReadOnlySpan<byte> body, out ClaudeBackendError? error)
    {
        error = null;
        try
        {
            var request = JsonSerializer.Deserialize(body, ClaudeBackendJsonContext.Default.ClaudeTurnRequest);
            error = request is null ? new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, "The turn request is empty.") : null;
            return request;
        }
        catch (JsonException exception)
        {
            error = new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, $"Invalid turn request: {exception.Message}");
            return null;
        }
    }

    /// <summary>An error as the serialized form answers it: its status and a JSON body.</summary>
    public static HttpContent ErrorContent(ClaudeBackendError error)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(new ClaudeBackendErrorBody(error), ClaudeBackendJsonContext.Default.ClaudeBackendErrorBody));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = Encoding.UTF8.WebName };
        return content;
    }

    /// <summary>The events of the turn a backend response answers, whichever form it came in.</summary>
    public static async Task<IClaudeTurnEvents> ReadEventsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content is ClaudeTurnContent typed)
        {
            return typed.Events;
        }

        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            return ClaudeTurnEvents.Failed(ReadError(body)
                ?? new ClaudeBackendError(ClaudeBackendError.KindOf(response.StatusCode), $"The claude backend answered {(int)response.StatusCode}."));
        }

        return new ClaudeEventLineReader(await response.Content.ReadAsStreamAsync(cancellationToken));
    }

    /// <summary>The error in a non-2xx backend response, or null when the body is not one.</summary>
    public static ClaudeBackendError? ReadError(ReadOnlySpan<byte> body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, ClaudeBackendJsonContext.Default.ClaudeBackendErrorBody)?.Error;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
