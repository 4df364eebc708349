using System.Buffers;
using System.IO.Pipelines;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms;

/// <summary>
/// Reads the backend's NDJSON stream and decodes it into events, a batch per read, as lines arrive. It always ends
/// with exactly one outcome event: a stream that stops without one ends with <see cref="TurnFailed"/>.
/// </summary>
internal sealed class ClaudeEventReader(Stream backend) : IAsyncDisposable
{
    private readonly PipeReader _reader = PipeReader.Create(backend, new StreamPipeReaderOptions(leaveOpen: false));
    private readonly ClaudeStreamDecoder _decoder = new();
    private bool _ended;

    /// <summary>Fills <paramref name="events"/> with the next events; false once the outcome was read.</summary>
    public async ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
    {
        events.Clear();
        while (events.Count == 0)
        {
            if (_ended || _decoder.IsFinished)
            {
                return false;
            }

            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            while (!_decoder.IsFinished && TryReadLine(ref buffer, out var line))
            {
                Decode(line, events);
            }

            if (result.IsCompleted && !_decoder.IsFinished)
            {
                Decode(buffer, events);
                buffer = buffer.Slice(buffer.End);
                if (!_decoder.IsFinished)
                {
                    events.Add(new TurnFailed(new ClaudeBackendError(ClaudeErrorKind.CliFailed, "The Claude answer ended before the turn was complete.")));
                }

                _ended = true;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
        }

        return true;
    }

    private void Decode(ReadOnlySequence<byte> line, List<ClaudeStreamEvent> events)
    {
        if (line.IsSingleSegment)
        {
            _decoder.Decode(line.FirstSpan, events);
        }
        else
        {
            _decoder.Decode(line.ToArray(), events);
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
    {
        var newline = buffer.PositionOf((byte)'\n');
        if (newline is null)
        {
            line = default;
            return false;
        }

        line = buffer.Slice(0, newline.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, newline.Value));
        return true;
    }

    public async ValueTask DisposeAsync() => await _reader.CompleteAsync();
}
