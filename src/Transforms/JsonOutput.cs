using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace ClaudeProxy.Transforms;

/// <summary>Writes wire objects as NDJSON lines, SSE frames or plain JSON bodies.</summary>
internal static class JsonOutput
{
    // Clients read UTF-8; escaping every non-ASCII character would only bloat the stream.
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteJson<T>(IBufferWriter<byte> output, T value, JsonTypeInfo<T> typeInfo)
    {
        using var writer = new Utf8JsonWriter(output, WriterOptions);
        JsonSerializer.Serialize(writer, value, typeInfo);
    }

    /// <summary>One object and exactly one <c>\n</c>: Ollama clients parse every line as JSON.</summary>
    public static void WriteLine<T>(IBufferWriter<byte> output, T value, JsonTypeInfo<T> typeInfo)
    {
        WriteJson(output, value, typeInfo);
        output.Write("\n"u8);
    }

    public static void WriteSseFrame<T>(IBufferWriter<byte> output, T value, JsonTypeInfo<T> typeInfo)
    {
        output.Write("data: "u8);
        WriteJson(output, value, typeInfo);
        output.Write("\n\n"u8);
    }

    /// <summary>A named SSE event (<c>event:</c>, then the <c>data:</c> frame), as the Anthropic and Responses APIs stream.</summary>
    public static void WriteSseEvent<T>(IBufferWriter<byte> output, string name, T value, JsonTypeInfo<T> typeInfo)
    {
        output.Write("event: "u8);
        System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.UTF8, name, output);
        output.Write("\n"u8);
        WriteSseFrame(output, value, typeInfo);
    }

    public static byte[] ToBytes<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        var output = new ArrayBufferWriter<byte>();
        WriteJson(output, value, typeInfo);
        return output.WrittenSpan.ToArray();
    }
}
