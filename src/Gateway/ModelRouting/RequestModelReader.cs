using System.Buffers;
using System.Text.Json;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Finds the top-level <c>"model"</c> of a JSON body by reading it incrementally, never parsing it whole: clients put
/// <c>model</c> first or after a large <c>messages</c> array, and a body can hold megabytes of images.
/// </summary>
internal static class RequestModelReader
{
    private const int InitialBufferSize = 4096;

    /// <summary>The model name, or null when the body is not a JSON object with a string <c>model</c>.</summary>
    public static async ValueTask<string?> ReadAsync(Stream body, int maxBytes, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
        var scan = new Scan();
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
                    return null;
                }

                var consumed = scan.Advance(buffer.AsSpan(0, filled), isFinalBlock: read == 0);
                if (scan.Done || read == 0)
                {
                    return scan.Model;
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

    private sealed class Scan
    {
        private JsonReaderState _state;
        private bool _nextIsModel;

        public bool Done { get; private set; }

        public string? Model { get; private set; }

        /// <summary>Reads the tokens in <paramref name="data"/>; returns how many bytes were consumed.</summary>
        public int Advance(ReadOnlySpan<byte> data, bool isFinalBlock)
        {
            var reader = new Utf8JsonReader(data, isFinalBlock, _state);
            try
            {
                while (reader.Read())
                {
                    if (_nextIsModel)
                    {
                        Model = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                        Done = true;
                        return (int)reader.BytesConsumed;
                    }

                    if (reader.CurrentDepth == 0 && reader.TokenType != JsonTokenType.StartObject)
                    {
                        // Not an object, or the object ended without a model.
                        Done = true;
                        return (int)reader.BytesConsumed;
                    }

                    _nextIsModel = reader.TokenType == JsonTokenType.PropertyName
                        && reader.CurrentDepth == 1
                        && reader.ValueTextEquals("model"u8);
                }
            }
            catch (JsonException)
            {
                Done = true;
                return data.Length;
            }

            _state = reader.CurrentState;
            return (int)reader.BytesConsumed;
        }
    }
}
