using System.IO.Pipelines;
using System.Text;
using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.ModelRouting;

public sealed class RequestModelReaderTests
{
    private static ValueTask<string?> Read(string json, int chunkSize = 7, int maxBytes = 1 << 24) =>
        RequestModelReader.ReadAsync(new TrickleStream(Encoding.UTF8.GetBytes(json), chunkSize), maxBytes, TestContext.Current.CancellationToken);

    [Theory]
    [InlineData("""{"model":"claude-sonnet:latest","messages":[]}""", "claude-sonnet:latest")]
    [InlineData("""{"messages":[{"role":"user","content":"a \"model\": inside","model":"nested"}],"model":"last"}""", "last")]
    [InlineData("""  {"stream":true, "options":{"model":"no"}, "model" : "llama3.2" }""", "llama3.2")]
    [InlineData("""{"model":"caf\u00e9:latest"}""", "café:latest")]
    public async Task The_top_level_model_is_found_wherever_it_stands(string json, string expected)
    {
        Assert.Equal(expected, await Read(json));
    }

    [Theory]
    [InlineData("""{"name":"older","model":"newer"}""", "newer")]
    [InlineData("""{"model":"newer","name":"older"}""", "newer")]
    [InlineData("""{"name":"older","messages":[]}""", "older")]
    [InlineData("""{"model":42,"name":"older"}""", "older")]
    [InlineData("""{"model":42,"model":"string"}""", "string")]
    [InlineData("""{"model":"first","model":"second"}""", "first")]
    [InlineData("""{"name":"first","name":"second"}""", "first")]
    public async Task Model_is_preferred_to_name_and_the_first_string_of_each_counts(string json, string expected)
    {
        Assert.Equal(expected, await Read(json));
        // Again from a body whose reads complete later, so the scan's state lives in the reader's state machine.
        Assert.Equal(expected, await RequestModelReader.ReadAsync(new LateStream(Encoding.UTF8.GetBytes(json), chunkSize: 3), 1 << 20, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"messages":[]}""")]
    [InlineData("""{"model":42}""")]
    [InlineData("""{"model":"unterminated""")]
    [InlineData("""{"messages":[{"content":"x"}""")]
    public async Task A_body_without_a_readable_model_gives_null(string json)
    {
        Assert.Null(await Read(json));
    }

    [Fact]
    public async Task A_model_that_is_not_valid_utf8_is_no_model()
    {
        byte[] body = [.. "{\"model\":\""u8, 0xC3, 0x28, .. "\"}"u8];

        Assert.Null(await RequestModelReader.ReadAsync(new MemoryStream(body), 1 << 20, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_model_after_megabytes_of_images_is_found()
    {
        var image = new string('A', 3_000_000);
        var json = $$"""{"messages":[{"role":"user","content":"x","images":["{{image}}"]}],"model":"claude-opus:latest"}""";

        Assert.Equal("claude-opus:latest", await Read(json, chunkSize: 65_536));
    }

    [Fact]
    public async Task Scanning_stops_at_the_byte_limit()
    {
        var json = $$"""{"messages":["{{new string('A', 10_000)}}"],"model":"m"}""";

        Assert.Null(await Read(json, maxBytes: 4096));
    }

    [Theory]
    [InlineData("""{"model":"claude-sonnet:latest","messages":[]}""", "claude-sonnet:latest")]
    [InlineData("""{"messages":[{"role":"user","content":"a \"model\": inside","model":"nested"}],"model":"last"}""", "last")]
    [InlineData("""{"name":"older","messages":[]}""", "older")]
    [InlineData("""{"model":42}""", null)]
    [InlineData("not json", null)]
    [InlineData("", null)]
    public async Task A_peek_at_a_body_that_has_arrived_finds_the_model_as_a_read_does_and_leaves_the_body_in_the_pipe(string json, string? expected)
    {
        var pipe = new Pipe();
        var body = Encoding.UTF8.GetBytes(json);
        await pipe.Writer.WriteAsync(body, Cancel);
        await pipe.Writer.CompleteAsync();

        var (decided, model) = await RequestModelReader.PeekAsync(pipe.Reader, RequestModelReader.ModelProperties, 1 << 20, Cancel);

        Assert.True(decided);
        Assert.Equal(expected, model);
        Assert.Equal(body, await ReadToEndAsync(pipe.Reader));
    }

    [Fact]
    public async Task A_model_that_spans_two_of_the_pipes_segments_is_found()
    {
        // The pipe's segments are 4 KiB: the model's value starts a few bytes before the first one ends.
        var pipe = new Pipe();
        var body = Encoding.UTF8.GetBytes($$"""{"messages":["{{new string('A', 4064)}}"],"model":"claude-sonnet:latest"}""");
        await pipe.Writer.WriteAsync(body, Cancel);
        await pipe.Writer.CompleteAsync();

        var (decided, model) = await RequestModelReader.PeekAsync(pipe.Reader, RequestModelReader.ModelProperties, 1 << 20, Cancel);

        Assert.True(decided);
        Assert.Equal("claude-sonnet:latest", model);
    }

    [Fact]
    public async Task A_peek_stops_at_the_byte_limit()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes($$"""{"messages":["{{new string('A', 10_000)}}"],"model":"m"}"""), Cancel);
        await pipe.Writer.CompleteAsync();

        Assert.Equal((true, null), await RequestModelReader.PeekAsync(pipe.Reader, RequestModelReader.ModelProperties, 4096, Cancel));
    }

    /// <summary>The rest of the body comes only after the peek: it is not waited for, and the reader that follows gets it all.</summary>
    [Fact]
    public async Task A_peek_looks_only_at_what_has_arrived_and_leaves_all_of_it_for_the_reader_that_follows()
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1, resumeWriterThreshold: 1));
        var start = Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"why?"}],""");
        var rest = Encoding.UTF8.GetBytes("""  "model":"claude-sonnet:latest"}""");
        var writing = WriteAsync(pipe.Writer, start, rest);

        var (decided, model) = await RequestModelReader.PeekAsync(pipe.Reader, RequestModelReader.ModelProperties, 1 << 20, Cancel).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Cancel);
        var read = await ReadToEndAsync(pipe.Reader).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Cancel);
        await writing;

        Assert.False(decided);
        Assert.Null(model);
        Assert.Equal([.. start, .. rest], read);
    }

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>Writes each part with a flush of its own, as a body on its way arrives.</summary>
    private static async Task WriteAsync(PipeWriter writer, params byte[][] parts)
    {
        foreach (var part in parts)
        {
            await writer.WriteAsync(part, Cancel);
        }

        await writer.CompleteAsync();
    }

    private static async ValueTask<byte[]> ReadToEndAsync(PipeReader reader)
    {
        using var all = new MemoryStream();
        await reader.CopyToAsync(all, Cancel);
        return all.ToArray();
    }

    /// <summary>A stream that returns at most a few bytes per read, as a slow client's body does.</summary>
    private sealed class TrickleStream(byte[] data, int chunkSize) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, chunkSize)], cancellationToken);
    }
}
