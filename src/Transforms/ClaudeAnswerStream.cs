using System.Buffers;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.Transforms.Telemetry;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The client's view of a streamed turn: each chunk holds the frames translated from the backend lines that have
/// arrived, so every token reaches the client as soon as the CLI prints it. Disposing it disposes the backend
/// stream, which ends the CLI process.
/// </summary>
internal sealed class ClaudeAnswerStream(IClaudeTurnEvents events, AnswerWriter writer, GenAiRequestTimer? timer) : ChunkStream
{
    private readonly List<ClaudeStreamEvent> _batch = [];
    private readonly ArrayBufferWriter<byte> _output = new();

    protected override async ValueTask<ReadOnlyMemory<byte>> ReadChunkAsync(CancellationToken cancellationToken)
    {
        _output.ResetWrittenCount();
        while (_output.WrittenCount == 0 && await events.ReadAsync(_batch, cancellationToken))
        {
            foreach (var streamEvent in _batch)
            {
                writer.WriteStreamEvent(streamEvent, _output);
                timer.Observe(streamEvent);
            }
        }

        return _output.WrittenMemory;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Disposed before the outcome: the client went away. (A finished turn was recorded already.)
            timer?.Fail(GenAiObservation.Cancelled);
            events.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        timer?.Fail(GenAiObservation.Cancelled);
        await events.DisposeAsync();
        await base.DisposeAsync();
    }
}
