using System.Text;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The response body of a turn: one stream-json line per read, so every line reaches the client as soon as the CLI
/// prints it. Disposing the stream (YARP does when the client goes away) ends the CLI process.
/// </summary>
internal sealed class ClaudeTurnStream(ClaudeTurn turn) : Stream
{
    private ReadOnlyMemory<byte> _pending;

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
        if (_pending.IsEmpty)
        {
            var line = await turn.ReadLineAsync(cancellationToken);
            if (line is null)
            {
                return 0;
            }

            _pending = Encoding.UTF8.GetBytes(line + "\n");
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
