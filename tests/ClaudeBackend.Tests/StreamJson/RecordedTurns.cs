using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.ClaudeBackend.Tests.StreamJson;

/// <summary>The events of a recorded CLI turn, decoded as the backend decodes them.</summary>
internal static class RecordedTurns
{
    public static List<ClaudeStreamEvent> Decode(string fixture) => Decode(new ClaudeStreamDecoder(), Fixtures.StdoutLines(fixture));

    /// <summary>Every event <paramref name="decoder"/> (set up for a request's options) makes of <paramref name="lines"/>.</summary>
    public static List<ClaudeStreamEvent> Decode(ClaudeStreamDecoder decoder, IEnumerable<string> lines)
    {
        List<ClaudeStreamEvent> events = [];
        foreach (var line in lines)
        {
            decoder.Decode(line, events);
        }

        return events;
    }
}
