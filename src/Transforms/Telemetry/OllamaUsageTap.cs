using System.Buffers;
using System.Net;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend;

namespace ClaudeProxy.Transforms.Telemetry;

/// <summary>
/// Passes an Ollama answer through unchanged, read for read, while it watches the lines go by for the usage that
/// Ollama puts in its final chunk (<c>done:true</c> with <c>prompt_eval_count</c>/<c>eval_count</c>), or a <c>usage</c>
/// object as Ollama's OpenAI and Anthropic APIs put it. Only the current line is held, never the stream.
/// </summary>
/// <remarks>
/// A body with a <c>Content-Length</c> is complete once that many bytes have passed: the copier need not ask for the
/// end of the stream, so that is when the usage is recorded. A tap disposed before the end was cut short: by the
/// client (<paramref name="clientAborted"/>), or else by the upstream.
/// </remarks>
internal sealed class OllamaUsageTap(Stream upstream, GenAiRequestTimer timer, long? contentLength, CancellationToken clientAborted) : ReadOnlyStream
{
    /// <summary>A line longer than this is not a usage line; it is skipped rather than held.</summary>
    private const int MaxLineBytes = 1 << 20;

    /// <summary>
    /// The start of a line that a later read finishes; made only when a line is held past a read (one that spans reads,
    /// or a body's last line without a newline).
    /// </summary>
    private ArrayBufferWriter<byte>? _line;
    private bool _lineTooLong;
    private long? _inputTokens;
    private long? _outputTokens;
    private string? _responseModel;
    private long _bytesRead;
    private bool _ended;

    /// <remarks>
    /// Not async of its own: YARP's copier first reads zero bytes to wait for data, and that wait goes to the upstream
    /// as it is; the read that follows finds the data there and is watched where it completes.
    /// </remarks>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            // A zero-byte read waits for data: never the end of the body, unless that body is empty.
            if (_bytesRead >= contentLength)
            {
                End();
            }

            return upstream.ReadAsync(buffer, cancellationToken);
        }

        var read = upstream.ReadAsync(buffer, cancellationToken);
        return read.IsCompletedSuccessfully ? new ValueTask<int>(Watched(buffer.Span, read.Result)) : WatchedAsync(buffer, read);
    }

    private async ValueTask<int> WatchedAsync(Memory<byte> buffer, ValueTask<int> pending)
    {
        var read = await pending;
        return Watched(buffer.Span, read);
    }

    /// <summary>Watches what a read into a real buffer brought; an empty one is the end.</summary>
    private int Watched(ReadOnlySpan<byte> buffer, int read)
    {
        if (read > 0)
        {
            timer.MarkFirstToken();
            Watch(buffer[..read]);
            _bytesRead += read;
        }

        if (read == 0 || _bytesRead >= contentLength)
        {
            End();
        }

        return read;
    }

    private void End()
    {
        if (!_ended)
        {
            _ended = true;
            EndLine();
            timer.Complete(_inputTokens, _outputTokens, _responseModel);
        }
    }

    private void Watch(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var newline = data.IndexOf((byte)'\n');
            if (newline < 0)
            {
                Hold(data);
                return;
            }

            if (_line is not { WrittenCount: > 0 } && !_lineTooLong)
            {
                // A whole line inside this read (the common case) is looked at where it is, never copied.
                Inspect(data[..newline]);
            }
            else
            {
                Hold(data[..newline]);
                EndLine();
            }

            data = data[(newline + 1)..];
        }
    }

    /// <summary>Keeps the start of a line that the next read finishes.</summary>
    private void Hold(ReadOnlySpan<byte> part)
    {
        _line ??= new ArrayBufferWriter<byte>();
        if (!_lineTooLong && _line.WrittenCount + part.Length <= MaxLineBytes)
        {
            _line.Write(part);
        }
        else
        {
            _lineTooLong = true;
        }
    }

    private void EndLine()
    {
        if (!_lineTooLong && _line is not null)
        {
            Inspect(_line.WrittenSpan);
        }

        _line?.ResetWrittenCount();
        _lineTooLong = false;
    }

    private void Inspect(ReadOnlySpan<byte> line)
    {
        line = line.Trim((byte)' ');
        if (line.IndexOf("prompt_eval_count"u8) >= 0 || line.IndexOf("\"usage\""u8) >= 0)
        {
            ReadUsage(line.StartsWith("data:"u8) ? line["data:".Length..] : line);
        }
    }

    private void ReadUsage(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            // Anthropic's stream starts with the message (message_start), the Responses API's ends with the response
            // (response.completed); their usage and model are inside. Elsewhere they are at the top.
            var (answer, usage) = Object(root, "message") is { } message && Object(message, "usage") is { } messageUsage ? (message, messageUsage)
                : Object(root, "response") is { } response && Object(response, "usage") is { } responseUsage ? (response, responseUsage)
                : (root, Object(root, "usage"));
            if (answer.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String)
            {
                _responseModel = model.GetString();
            }

            if (usage is { } found)
            {
                _inputTokens = (Count(found, "prompt_tokens") ?? Count(found, "input_tokens")) ?? _inputTokens;
                _outputTokens = (Count(found, "completion_tokens") ?? Count(found, "output_tokens")) ?? _outputTokens;
            }
            else
            {
                _inputTokens = Count(root, "prompt_eval_count") ?? _inputTokens;
                _outputTokens = Count(root, "eval_count") ?? _outputTokens;
            }
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException)
        {
            // Not JSON after all, or not text a string can hold: the client gets the bytes as they were; the metrics go
            // without this line.
        }
    }

    private static JsonElement? Object(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value : null;

    /// <summary>A token count as the upstream gave it; anything but a whole number of tokens a request could hold is none.</summary>
    private static long? Count(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var count)
            && count is >= 0 and <= int.MaxValue
            ? count
            : null;

    /// <summary>The tap as a response's content, which the forwarder reads as it is (a <c>StreamContent</c> would wrap it again).</summary>
    public HttpContent AsContent() => new TapContent(this);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Disposed before the end (a completed answer was recorded already): the client went away, or else the
            // upstream broke off its answer.
            timer.Fail(clientAborted.IsCancellationRequested ? GenAiObservation.Cancelled : GenAiObservation.UpstreamInterrupted, _responseModel);
            upstream.Dispose();
        }

        base.Dispose(disposing);
    }

    private sealed class TapContent(OllamaUsageTap tap) : HttpContent
    {
        protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult<Stream>(tap);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => tap.CopyToAsync(stream);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            tap.CopyToAsync(stream, cancellationToken);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Also when the tap was never read (the forwarder gave up first): the request is then recorded as ended early.
                tap.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
