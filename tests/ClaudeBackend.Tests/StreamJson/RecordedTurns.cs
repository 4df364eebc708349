using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.ClaudeBackend.Tests.StreamJson;

/// <summary>The events of a recorded CLI turn, decoded as the backend decodes them.</summary>
internal static class RecordedTurns
{
    public static List<ClaudeStreamEvent> Decode(string fixture)
    {
        var decoder = new ClaudeStreamDecoder();
        List<ClaudeStreamEvent> events = [];
        foreach (var line in Fixtures.StdoutLines(fixture))
        {
            decoder.Decode(line, events);
        }

        return events;
    }
}
