namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// A read-only stream over a source of chunks. Each read returns (part of) one chunk and never waits for more, so a
/// copy loop over it (YARP's) writes every chunk to the client as soon as the chunk exists.
/// </summary>
public abstract class ChunkStream : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _pending;
    private bool _ended;

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
}
