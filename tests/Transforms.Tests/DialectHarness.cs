using System.Text;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Transforms.Tests;

/// <summary>Runs a dialect over recorded CLI output the way the response transform does.</summary>
internal static class DialectHarness
{
    /// <summary>What a gateway gives the dialects, each with a memory of its own.</summary>
    public static DialectServices Services() => new(TimeProvider.System, new LocalResponsesHistory());

    public static DialectRequest Parse(ClaudeDialect dialect, string json)
    {
        var request = dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out var immediate);
        Assert.Null(immediate);
        return Assert.IsType<DialectRequest>(request);
    }

    /// <summary>
    /// What a streaming client receives for these CLI lines, decoded as the backend decodes them (a batch per line),
    /// and then <paramref name="failure"/> if the lines end without an outcome.
    /// </summary>
    public static async Task<string> StreamAsync(ClaudeDialect dialect, DialectRequest request, IEnumerable<string> cliLines, ClaudeBackendError? failure = null)
    {
        var decoder = new ClaudeStreamDecoder();
        List<List<ClaudeStreamEvent>> batches = [];
        foreach (var line in cliLines)
        {
            List<ClaudeStreamEvent> batch = [];
            decoder.Decode(line, batch);
            batches.Add(batch);
        }

        if (!decoder.IsFinished)
        {
            batches.Add([new TurnFailed(Assert.IsType<ClaudeBackendError>(failure))]);
        }

        await using var answer = new ClaudeAnswerStream(new RecordedTurn(batches), dialect.CreateWriter(request, Services(), TimeProvider.System.GetTimestamp()), timer: null);
        using var reader = new StreamReader(answer);
        return await reader.ReadToEndAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>A stream of named SSE events (<c>event:</c> then <c>data:</c>): each event's name and data.</summary>
    public static List<(string Event, System.Text.Json.JsonElement Data)> NamedEvents(string stream) =>
        [.. stream.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(frame =>
        {
            var lines = frame.Split('\n');
            return (lines[0]["event: ".Length..], System.Text.Json.JsonDocument.Parse(lines[1]["data: ".Length..]).RootElement.Clone());
        })];

    public static Task<string> StreamAsync(ClaudeDialect dialect, DialectRequest request, string fixture) =>
        StreamAsync(dialect, request, Fixtures.StdoutLines(fixture));

    private sealed class RecordedTurn(List<List<ClaudeStreamEvent>> batches) : IClaudeTurnEvents
    {
        private int _next;

        public ClaudeBackendError? FailedBeforeAnswer => null;

        public ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
        {
            events.Clear();
            while (events.Count == 0 && _next < batches.Count)
            {
                events.AddRange(batches[_next++]);
            }

            return ValueTask.FromResult(events.Count > 0);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
