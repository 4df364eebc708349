using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// Reads a turn's events from the contract's NDJSON form (one <see cref="ClaudeStreamEvent"/> a line), a batch per
/// read, as lines arrive. It always ends with exactly one outcome: a stream that stops without one ends with
/// <see cref="TurnFailed"/>.
/// </summary>
internal sealed class ClaudeEventLineReader(Stream lines) : IClaudeTurnEvents
{
    private readonly PipeReader _reader = PipeReader.Create(lines, new StreamPipeReaderOptions(leaveOpen: false));
    private bool _ended;

    public ClaudeBackendError? FailedBeforeAnswer => null;

    public async ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
    {
        events.Clear();
        while (events.Count == 0 && !_ended)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            while (!_ended && TryReadLine(ref buffer, out var line))
            {
                Read(line, events, cutOff: false);
            }

            if (result.IsCompleted && !_ended)
            {
                Read(buffer, events, cutOff: true);
                buffer = buffer.Slice(buffer.End);
                if (!_ended)
                {
                    events.Add(new TurnFailed(new ClaudeBackendError(ClaudeErrorKind.CliFailed, "The Claude answer ended before the turn was complete.")));
                    _ended = true;
                }
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
        }

        return events.Count > 0;
    }

    /// <param name="cutOff">The rest of a stream that ended without a newline: unreadable, it is a line cut off.</param>
    private void Read(ReadOnlySequence<byte> line, List<ClaudeStreamEvent> events, bool cutOff)
    {
        if (line.IsEmpty)
        {
            return;
        }

        var reader = new Utf8JsonReader(line);
        ClaudeStreamEvent? streamEvent;
        try
        {
            streamEvent = JsonSerializer.Deserialize(ref reader, ClaudeBackendJsonContext.Default.ClaudeStreamEvent);
        }
        catch (JsonException) when (cutOff)
        {
            // The stream broke mid-line: the caller ends the turn as one that stopped before its outcome.
            return;
        }
        catch (JsonException) when (IsOfAnotherKind(line))
        {
            // An event of a kind this gateway does not know, from a newer worker: nothing its clients would get.
            return;
        }
        catch (JsonException exception)
        {
            streamEvent = new TurnFailed(new ClaudeBackendError(ClaudeErrorKind.UpstreamError, $"The claude backend sent an unreadable event: {exception.Message}"));
        }

        if (streamEvent is null)
        {
            return;
        }

        events.Add(streamEvent);
        _ended = streamEvent is TurnCompleted or TurnFailed;
    }

    /// <summary>Whether <paramref name="line"/> is a JSON object whose <c>type</c> names no event kind of the contract.</summary>
    private static bool IsOfAnotherKind(ReadOnlySequence<byte> line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement is { ValueKind: JsonValueKind.Object } root
                && root.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
                && !ClaudeBackendJsonContext.Default.ClaudeStreamEvent.PolymorphismOptions!.DerivedTypes.Any(d => d.TypeDiscriminator as string == type.GetString());
        }
        catch (JsonException)
        {
            return false;
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
