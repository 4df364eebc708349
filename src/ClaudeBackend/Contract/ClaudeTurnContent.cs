using System.Net.Http.Headers;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// The in-process backend's response body: it carries the turn's <see cref="Events"/> as they are, for the response
/// transform to read without a byte in between, and reads as the contract's NDJSON should anything copy it as bytes.
/// </summary>
public sealed class ClaudeTurnContent : StreamContent
{
    public ClaudeTurnContent(IClaudeTurnEvents events)
        : base(new ClaudeEventLineStream(events))
    {
        Events = events;
        Headers.ContentType = new MediaTypeHeaderValue(ClaudeBackendContract.EventsMediaType);
    }

    public IClaudeTurnEvents Events { get; }
}
