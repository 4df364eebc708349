using System.Buffers;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The client's view of a streamed turn: each read returns the frames translated from the backend lines that have
/// arrived, so YARP's copy loop writes (and Kestrel flushes) every token as soon as the CLI prints it.
/// Disposing it disposes the backend stream, which ends the CLI process.
/// </summary>
internal sealed class ClaudeAnswerStream(ClaudeEventReader events, AnswerWriter writer) : Stream
{
    private readonly List<ClaudeStreamEvent> _batch = [];
    private readonly ArrayBufferWriter<byte> _output = new();
    private int _offset;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_offset == _output.WrittenCount)
        {
            _output.ResetWrittenCount();
            _offset = 0;
            if (!await events.ReadAsync(_batch, cancellationToken))
            {
                return 0;
            }

            foreach (var streamEvent in _batch)
            {
                writer.WriteStreamEvent(streamEvent, _output);
            }
        }

        var count = Math.Min(buffer.Length, _output.WrittenCount - _offset);
        _output.WrittenMemory.Slice(_offset, count).CopyTo(buffer);
        _offset += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            events.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await events.DisposeAsync();
        await base.DisposeAsync();
    }
}
