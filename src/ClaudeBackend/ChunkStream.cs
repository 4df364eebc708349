namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// A read-only stream over a source of chunks. Each read returns (part of) one chunk and never waits for more, so a
/// copy loop over it (YARP's) writes every chunk to the client as soon as the chunk exists.
/// </summary>
public abstract class ChunkStream : Stream
{
    private ReadOnlyMemory<byte> _pending;
    private bool _ended;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>The next chunk; empty at the end. The memory must stay valid until the next call.</summary>
    protected abstract ValueTask<ReadOnlyMemory<byte>> ReadChunkAsync(CancellationToken cancellationToken);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pending.IsEmpty && !_ended)
        {
            _pending = await ReadChunkAsync(cancellationToken);
            _ended = _pending.IsEmpty;
        }

        var count = Math.Min(buffer.Length, _pending.Length);
        _pending[..count].CopyTo(buffer);
        _pending = _pending[count..];
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
}
