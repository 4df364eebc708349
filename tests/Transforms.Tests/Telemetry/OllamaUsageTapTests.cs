using System.Diagnostics.Metrics;
using System.Text;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace ClaudeProxy.Transforms.Tests.Telemetry;

public sealed class OllamaUsageTapTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MetricCollector<long> _tokens;
    private readonly MetricCollector<double> _firstToken;
    private readonly GenAiMetrics _metrics;

    public OllamaUsageTapTests()
    {
        var meterFactory = _services.GetRequiredService<IMeterFactory>();
        _metrics = new GenAiMetrics(meterFactory);
        _tokens = new MetricCollector<long>(meterFactory, GenAiMetrics.MeterName, "gen_ai.client.token.usage");
        _firstToken = new MetricCollector<double>(meterFactory, GenAiMetrics.MeterName, "gen_ai.server.time_to_first_token");
    }

    private GenAiRequestTimer Timer() => new(_metrics, TimeProvider.System, TimeProvider.System.GetTimestamp(), "chat", GenAiMetrics.Ollama, "llama3.2");

    private static async Task<string> ReadThrough(Stream tap, int chunkSize)
    {
        var output = new MemoryStream();
        var buffer = new byte[chunkSize];
        while (true)
        {
            // As YARP's copier does: a zero-byte read to wait for data, then a real one.
            Assert.Equal(0, await tap.ReadAsync(Memory<byte>.Empty, TestContext.Current.CancellationToken));
            var read = await tap.ReadAsync(buffer, TestContext.Current.CancellationToken);
            if (read == 0)
            {
                break;
            }

            output.Write(buffer, 0, read);
        }

        return Encoding.UTF8.GetString(output.ToArray());
    }

    [Theory]
    [InlineData(7)]
    [InlineData(65536)]
    public async Task The_final_ndjson_chunk_gives_the_token_counts_and_the_bytes_pass_unchanged(int chunkSize)
    {
        const string body = """
            {"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455Z","message":{"role":"assistant","content":"The"},"done":false}
            {"model":"llama3.2","created_at":"2025-07-07T20:22:19.19314Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":169,"eval_count":15}

            """;
        var bytes = Encoding.UTF8.GetBytes(body);

        var passed = await ReadThrough(new OllamaUsageTap(new MemoryStream(bytes), Timer(), bytes.Length, CancellationToken.None), chunkSize);

        Assert.Equal(body, passed);
        Assert.Equal([169L, 15L], _tokens.GetMeasurementSnapshot().Select(m => m.Value));
        Assert.Equal(["input", "output"], _tokens.GetMeasurementSnapshot().Select(m => m.Tags["gen_ai.token.type"]));
        Assert.Equal("llama3.2", _tokens.GetMeasurementSnapshot()[0].Tags["gen_ai.response.model"]);
        Assert.Single(_firstToken.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task Read_as_the_forwarder_reads_it_from_an_upstream_still_on_its_way_the_bytes_and_counts_are_the_same()
    {
        var body = "{\"done\":false,\"message\":{\"content\":\"x\"}}\n{\"model\":\"llama3.2\",\"done\":true,\"prompt_eval_count\":4,\"eval_count\":2}\n";
        using var content = new OllamaUsageTap(new LateStream(Encoding.UTF8.GetBytes(body), chunkSize: 9), Timer(), contentLength: null, CancellationToken.None).AsContent();

        var passed = await ReadThrough(await content.ReadAsStreamAsync(TestContext.Current.CancellationToken), 64);

        Assert.Equal(body, passed);
        Assert.Equal([4L, 2L], _tokens.GetMeasurementSnapshot().Select(m => m.Value));
        Assert.Single(_firstToken.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task An_openai_usage_chunk_gives_the_token_counts()
    {
        var sse = "data: {\"id\":\"c\",\"model\":\"llama3.2\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
            + "data: {\"id\":\"c\",\"model\":\"llama3.2\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n"
            + "data: [DONE]\n\n";

        await ReadThrough(new OllamaUsageTap(new MemoryStream(Encoding.UTF8.GetBytes(sse)), Timer(), null, CancellationToken.None), 16);

        Assert.Equal([11L, 3L], _tokens.GetMeasurementSnapshot().Select(m => m.Value));
    }

    [Theory]
    [InlineData("""
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"llama3.2","content":[],"usage":{"input_tokens":13,"output_tokens":1}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}


        """)]
    [InlineData("""
        {"id":"msg_1","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"x"}],"usage":{"input_tokens":13,"output_tokens":5}}
        """)]
    [InlineData("""
        event: response.created
        data: {"type":"response.created","response":{"id":"resp_1","model":"llama3.2","status":"in_progress","usage":null}}

        event: response.completed
        data: {"type":"response.completed","response":{"id":"resp_1","model":"llama3.2","status":"completed","usage":{"input_tokens":13,"output_tokens":5,"total_tokens":18}}}


        """)]
    public async Task Anthropic_and_responses_usage_gives_the_token_counts(string answer)
    {
        await ReadThrough(new OllamaUsageTap(new MemoryStream(Encoding.UTF8.GetBytes(answer)), Timer(), null, CancellationToken.None), 32);

        Assert.Equal([13L, 5L], _tokens.GetMeasurementSnapshot().Select(m => m.Value));
        Assert.Equal("llama3.2", _tokens.GetMeasurementSnapshot()[0].Tags["gen_ai.response.model"]);
    }

    [Theory]
    [InlineData("\"11\"")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("{}")]
    [InlineData("-100")]
    [InlineData("1.5")]
    [InlineData("9223372036854775807")]
    [InlineData("1e30")]
    public async Task A_count_that_is_no_whole_number_of_tokens_is_left_out_and_the_bytes_pass_unchanged(string count)
    {
        var body = $$$"""
            {"model":"llama3.2","message":{"role":"assistant","content":"x"},"done":false}
            {"model":"llama3.2","done":true,"prompt_eval_count":{{{count}}},"eval_count":7}
            {"id":"c","model":"llama3.2","choices":[],"usage":{"prompt_tokens":{{{count}}},"completion_tokens":3}}

            """;

        var passed = await ReadThrough(new OllamaUsageTap(new MemoryStream(Encoding.UTF8.GetBytes(body)), Timer(), null, CancellationToken.None), 16);

        Assert.Equal(body, passed);
        var output = Assert.Single(_tokens.GetMeasurementSnapshot());
        Assert.Equal(("output", 3L), (output.Tags["gen_ai.token.type"], output.Value));
    }

    [Fact]
    public void A_client_that_leaves_early_is_counted_as_a_disconnect_without_tokens()
    {
        using var disconnects = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.client.disconnects");

        new OllamaUsageTap(new MemoryStream("{\"done\":false}\n"u8.ToArray()), Timer(), null, new CancellationToken(canceled: true)).Dispose();

        Assert.Single(disconnects.GetMeasurementSnapshot());
        Assert.Empty(_tokens.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task An_answer_the_upstream_breaks_off_is_its_error_and_no_disconnect()
    {
        using var disconnects = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.client.disconnects");
        using var errors = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.errors");
        var tap = new OllamaUsageTap(new BreaksOff("{\"done\":false}\n"u8.ToArray()), Timer(), null, CancellationToken.None);

        await Assert.ThrowsAsync<IOException>(() => ReadThrough(tap, 64));
        tap.Dispose();

        Assert.Empty(disconnects.GetMeasurementSnapshot());
        Assert.Equal(GenAiObservation.UpstreamInterrupted, Assert.Single(errors.GetMeasurementSnapshot()).Tags["error.type"]);
        Assert.Empty(_tokens.GetMeasurementSnapshot());
    }

    /// <summary>An upstream that sends <paramref name="start"/>, then resets its connection.</summary>
    private sealed class BreaksOff(byte[] start) : ClaudeBackend.ReadOnlyStream
    {
        private bool _sent;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty)
            {
                return ValueTask.FromResult(0);
            }

            if (_sent)
            {
                return ValueTask.FromException<int>(new IOException("The upstream reset the connection."));
            }

            _sent = true;
            start.CopyTo(buffer);
            return ValueTask.FromResult(start.Length);
        }
    }

    public void Dispose()
    {
        _tokens.Dispose();
        _firstToken.Dispose();
        _services.Dispose();
    }
}
