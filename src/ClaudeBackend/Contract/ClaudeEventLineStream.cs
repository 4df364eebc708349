using System.Buffers;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// A turn's events in the contract's NDJSON form, one JSON line per event, a chunk per batch as the events arrive.
/// Disposing the stream disposes the events, which ends the turn.
/// </summary>
internal sealed class ClaudeEventLineStream(IClaudeTurnEvents events) : ChunkStream
{
    private readonly List<ClaudeStreamEvent> _batch = [];
    private readonly ArrayBufferWriter<byte> _output = new();

    protected override async ValueTask<ReadOnlyMemory<byte>> ReadChunkAsync(CancellationToken cancellationToken)
    {
        _output.ResetWrittenCount();
        if (await events.ReadAsync(_batch, cancellationToken))
        {
            using var writer = new Utf8JsonWriter(_output);
            foreach (var streamEvent in _batch)
            {
                JsonSerializer.Serialize(writer, streamEvent, ClaudeBackendJsonContext.Default.ClaudeStreamEvent);
                writer.Flush();
                writer.Reset();
                _output.Write("\n"u8);
            }
        }

        return _output.WrittenMemory;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Kill first, clean up after; a disposing caller need not wait for the process to be reaped.
            _ = events.DisposeAsync().AsTask();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await events.DisposeAsync();
        await base.DisposeAsync();
    }
}
