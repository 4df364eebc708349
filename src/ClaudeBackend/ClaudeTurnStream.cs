using System.Text;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The response body of a turn: one stream-json line per chunk, as the CLI prints it. Disposing the stream (YARP
/// does when the client goes away) ends the CLI process.
/// </summary>
internal sealed class ClaudeTurnStream(ClaudeTurn turn) : ChunkStream
{
    protected override async ValueTask<ReadOnlyMemory<byte>> ReadChunkAsync(CancellationToken cancellationToken) =>
        await turn.ReadLineAsync(cancellationToken) is { } line ? Encoding.UTF8.GetBytes(line + "\n") : ReadOnlyMemory<byte>.Empty;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Kill first, clean up after; a disposing caller need not wait for the process to be reaped.
            _ = turn.DisposeAsync().AsTask();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await turn.DisposeAsync();
        await base.DisposeAsync();
    }
}
