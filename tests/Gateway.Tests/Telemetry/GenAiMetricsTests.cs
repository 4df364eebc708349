using System.Diagnostics.Metrics;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.Telemetry;

public sealed class GenAiMetricsTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ollama_token_counts_are_tapped_from_the_final_chunk(bool streamed)
    {
        using var ollama = FakeOllama.Start();
        if (streamed)
        {
            ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.FromMilliseconds(20));
        }

        await using var app = GatewayApp.WithFakeCli(configure: GatewayApp.WithOllama(ollama.Url));
        var client = app.CreateClient();
        using var tokens = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "gen_ai.client.token.usage");

        var (response, lines) = await PostAndReadLinesAsync(client, "/api/chat", Json("""{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(4, lines.Count);
        await tokens.WaitForMeasurementsAsync(2, TimeSpan.FromSeconds(5));
        var measurements = tokens.GetMeasurementSnapshot();
        Assert.Equal([169L, 15L], measurements.Select(m => m.Value));
        Assert.All(measurements, m => Assert.Equal("ollama", m.Tags["gen_ai.provider.name"]));
        Assert.All(measurements, m => Assert.Equal("llama3.2", m.Tags["gen_ai.response.model"]));
    }

    [Fact]
    public async Task A_client_that_leaves_before_ollama_answers_is_counted_as_a_disconnect_not_as_an_unreachable_ollama()
    {
        using var ollama = FakeOllama.Start();
        ollama.Server.Given(Request.Create().WithPath("/api/chat").UsingPost())
            .RespondWith(Response.Create().WithDelay(TimeSpan.FromSeconds(2)).WithBody("{}"));
        await using var app = GatewayApp.WithFakeCli(configure: GatewayApp.WithOllama(ollama.Url));
        using var errors = new MetricCollector<long>(app.Services.GetRequiredService<IMeterFactory>(), GenAiMetrics.MeterName, "claudeproxy.errors");
        using var leave = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        leave.CancelAfter(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            app.CreateClient().PostAsync("/api/chat", Json("""{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}"""), leave.Token));

        await errors.WaitForMeasurementsAsync(1, TimeSpan.FromSeconds(5));
        Assert.Equal(GenAiObservation.Cancelled, Assert.Single(errors.GetMeasurementSnapshot()).Tags["error.type"]);
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"claude-opus:latest","stream":true,"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("/v1/messages", """{"model":"claude-opus:latest","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("/v1/responses", """{"model":"claude-opus:latest","stream":true,"input":"x"}""")]
    public async Task Claude_token_counts_and_cost_come_from_the_clis_result(string path, string body)
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixtures.StdoutPath("print_stream_json_partial")}");
        var client = app.CreateClient();
        var meters = app.Services.GetRequiredService<IMeterFactory>();
        using var tokens = new MetricCollector<long>(meters, GenAiMetrics.MeterName, "gen_ai.client.token.usage");
        using var cost = new MetricCollector<double>(meters, GenAiMetrics.MeterName, "claudeproxy.cost.usd");

        await PostAndReadLinesAsync(client, path, Json(body), Cancel);

        await tokens.WaitForMeasurementsAsync(2, TimeSpan.FromSeconds(5));
        Assert.Equal([3173L, 13L], tokens.GetMeasurementSnapshot().Select(m => m.Value));
        Assert.All(tokens.GetMeasurementSnapshot(), m => Assert.Equal("chat", m.Tags["gen_ai.operation.name"]));
        Assert.All(tokens.GetMeasurementSnapshot(), m => Assert.Equal("claude-opus-4-8", m.Tags["gen_ai.response.model"]));
        Assert.Equal(0.01619, Assert.Single(cost.GetMeasurementSnapshot()).Value);
    }
}
