using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Finds the top-level <c>"model"</c> of a JSON body by reading it incrementally, never parsing it whole: clients put
/// <c>model</c> first or after a large <c>messages</c> array, and a body can hold megabytes of images.
/// </summary>
internal static class RequestModelReader
{
    private const int InitialBufferSize = 4096;

    /// <summary>Ollama's own order: <c>model</c>, else the older <c>name</c> (ollama-js still sends it for pull and delete).</summary>
    public static readonly string[] ModelProperties = ["model", "name"];

    /// <summary>The model a body names, by <see cref="ModelProperties"/>.</summary>
    public static ValueTask<string?> ReadAsync(Stream body, int maxBytes, CancellationToken cancellationToken) =>
        ReadAsync(body, ModelProperties, maxBytes, cancellationToken);

    /// <summary>
    /// The model a body names, by <paramref name="properties"/> as <see cref="ReadAsync(Stream, IReadOnlyList{string}, int, CancellationToken)"/>
    /// finds it (in at most <paramref name="maxBytes"/>), read from what the body's pipe holds at its first read and
    /// without consuming any of it: whoever forwards the body then reads it from its start, and nothing is copied. A
    /// model further in than what had arrived is not <c>Decided</c>.
    /// </summary>
    /// <remarks>
    /// One read only: a peek never waits for more of a body while it holds the start unconsumed, so no server's buffer
    /// limit or flow control has to let more in for it. A model that is not in what arrived first is the rare case.
    /// </remarks>
    public static async ValueTask<(bool Decided, string? Model)> PeekAsync(PipeReader body, IReadOnlyList<string> properties, int maxBytes, CancellationToken cancellationToken)
    {
        var result = await body.ReadAsync(cancellationToken);
        var buffer = result.Buffer;
        try
        {
            var limited = buffer.Length > maxBytes;
            var scan = new Scan(properties);
            scan.Advance(limited ? buffer.Slice(0, maxBytes) : buffer, isFinalBlock: result.IsCompleted && !limited);
            return (scan.Done || result.IsCompleted || limited, scan.Found);
        }
        finally
        {
            // Nothing consumed, nothing examined: the next read returns all of it again at once.
            body.AdvanceTo(buffer.Start);
        }
    }

    /// <summary>
    /// The value of the first of <paramref name="properties"/> the body has as a top-level string, or null when the
    /// body is not a JSON object with one.
    /// </summary>
    public static async ValueTask<string?> ReadAsync(Stream body, IReadOnlyList<string> properties, int maxBytes, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
        var scan = new Scan(properties);
        var filled = 0;
        long total = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    // One token (a long string) fills the buffer: grow it.
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                filled += read;
                total += read;
                if (total > maxBytes)
                {
                    return scan.Found;
                }

                var consumed = scan.Advance(buffer.AsSpan(0, filled), isFinalBlock: read == 0);
                if (scan.Done || read == 0)
                {
                    return scan.Found;
                }

                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <remarks>A struct: it lives in the reading method's frame (or its state machine), not on the heap of its own.</remarks>
    private struct Scan(IReadOnlyList<string> properties)
    {
        private JsonReaderState _state;
        private int _nextIs = -1;

        /// <summary>The rank in <c>properties</c> of <see cref="Found"/>; a property seen again, or ranked lower, does not replace it.</summary>
        private int _foundRank = int.MaxValue;

        public bool Done { get; private set; }

        /// <summary>The value of the most preferred property seen so far.</summary>
        public string? Found { get; private set; }

        /// <summary>Reads the tokens in <paramref name="data"/>; returns how many bytes were consumed.</summary>
        public int Advance(ReadOnlySpan<byte> data, bool isFinalBlock)
        {
            var reader = new Utf8JsonReader(data, isFinalBlock, _state);
            return (int)Advance(ref reader, data.Length);
        }

        /// <inheritdoc cref="Advance(ReadOnlySpan{byte}, bool)"/>
        public long Advance(ReadOnlySequence<byte> data, bool isFinalBlock)
        {
            var reader = new Utf8JsonReader(data, isFinalBlock, _state);
            return Advance(ref reader, data.Length);
        }

        private long Advance(ref Utf8JsonReader reader, long length)
        {
            try
            {
                while (reader.Read())
                {
                    if (_nextIs >= 0)
                    {
                        if (_nextIs < _foundRank && reader.TokenType == JsonTokenType.String)
                        {
                            (Found, _foundRank) = (reader.GetString(), _nextIs);
                        }

                        // The first choice ends the scan; a fallback keeps it going in case the first choice follows.
                        Done = _foundRank == 0;
                        _nextIs = -1;
                        if (Done)
                        {
                            return reader.BytesConsumed;
                        }
                    }

                    if (reader.CurrentDepth == 0 && reader.TokenType != JsonTokenType.StartObject)
                    {
                        // Not an object, or the object ended.
                        Done = true;
                        return reader.BytesConsumed;
                    }

                    if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1)
                    {
                        _nextIs = IndexOf(ref reader);
                    }
                }
            }
            catch (Exception exception) when (exception is JsonException or InvalidOperationException)
            {
                // Malformed JSON, or a string that is not valid UTF-8: no readable model.
                Done = true;
                return length;
            }

            _state = reader.CurrentState;
            return reader.BytesConsumed;
        }

        private readonly int IndexOf(ref Utf8JsonReader reader)
        {
            for (var i = 0; i < properties.Count; i++)
            {
                if (reader.ValueTextEquals(properties[i]))
                {
                    return i;
                }
            }

            return -1;
        }
    }
}
