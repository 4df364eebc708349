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

        var passed = await ReadThrough(new OllamaUsageTap(new MemoryStream(bytes), Timer(), bytes.Length), chunkSize);

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
        using var content = new OllamaUsageTap(new LateStream(Encoding.UTF8.GetBytes(body), chunkSize: 9), Timer(), contentLength: null).AsContent();

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

        await ReadThrough(new OllamaUsageTap(new MemoryStream(Encoding.UTF8.GetBytes(sse)), Timer(), null), 16);

        Assert.Equal([11L, 3L], _tokens.GetMeasurementSnapshot().Select(m => m.Value));
    }

    [Fact]
    public void A_client_that_leaves_early_is_counted_as_a_disconnect_without_tokens()
    {
        using var disconnects = new MetricCollector<long>(_services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.client.disconnects");

        new OllamaUsageTap(new MemoryStream("{\"done\":false}\n"u8.ToArray()), Timer(), null).Dispose();

        Assert.Single(disconnects.GetMeasurementSnapshot());
        Assert.Empty(_tokens.GetMeasurementSnapshot());
    }

    public void Dispose()
    {
        _tokens.Dispose();
        _firstToken.Dispose();
        _services.Dispose();
    }
}
