using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>A line of a streamed response and when the client received it.</summary>
public sealed record ReceivedLine(string Text, TimeSpan At);

public static class StreamingReads
{
    public static StringContent Json(string json, string mediaType = "application/json") => new(json, Encoding.UTF8, mediaType);

    /// <summary>POSTs and reads the response line by line as it arrives, noting the time of each line.</summary>
    public static async Task<(HttpResponseMessage Response, List<ReceivedLine> Lines)> PostAndReadLinesAsync(
        HttpClient client, string path, HttpContent body, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = body }, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        List<ReceivedLine> lines = [];
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                lines.Add(new ReceivedLine(line, clock.Elapsed));
            }
        }

        return (response, lines);
    }

    public static JsonElement Parse(this ReceivedLine line) => JsonDocument.Parse(line.Text).RootElement;

    /// <summary>The JSON payloads of SSE <c>data:</c> lines, without the final <c>[DONE]</c>.</summary>
    public static List<JsonElement> SseData(this IEnumerable<ReceivedLine> lines) =>
        lines.Where(l => l.Text.StartsWith("data: ", StringComparison.Ordinal) && l.Text != "data: [DONE]")
            .Select(l => JsonDocument.Parse(l.Text["data: ".Length..]).RootElement)
            .ToList();
}
