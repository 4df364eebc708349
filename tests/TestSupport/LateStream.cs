namespace ClaudeProxy.TestSupport;

/// <summary>
/// A stream whose every read, zero-byte waits included, completes after the caller has gone on and brings at most
/// <c>chunkSize</c> bytes, as a body still on its way does.
/// </summary>
public sealed class LateStream(byte[] data, int chunkSize) : MemoryStream(data)
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        return await base.ReadAsync(buffer[..Math.Min(buffer.Length, chunkSize)], cancellationToken);
    }
}
