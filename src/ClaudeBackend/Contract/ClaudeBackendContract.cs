using System.Text.Json;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>Reads and writes the backend's HTTP contract, for the code on the other side of it.</summary>
public static class ClaudeBackendContract
{
    public static byte[] Serialize(ClaudeTurnRequest request) =>
        JsonSerializer.SerializeToUtf8Bytes(request, ClaudeBackendJsonContext.Default.ClaudeTurnRequest);

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
