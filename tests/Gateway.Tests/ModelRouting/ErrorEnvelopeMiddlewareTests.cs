using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.ModelRouting;

/// <summary>A bug in the gateway is answered in the client's own envelope, and logged: never an empty 500.</summary>
public sealed class ErrorEnvelopeMiddlewareTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_unhandled_exception_is_answered_with_a_500_in_the_envelope_of_the_route_it_happened_on()
    {
        // Ollama is configured (nothing listens there: no request reaches it), and every look at YARP's state throws.
        await using var gateway = GatewayApp.WithFakeCli(configure: GatewayApp.WithOllama("http://127.0.0.1:9"));
        using var app = gateway.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => services.AddSingleton<IProxyStateLookup, BrokenProxyState>()));
        var client = app.CreateClient();
        const string Llama = """{"model":"llama3.2","max_tokens":8,"messages":[{"role":"user","content":"x"}]}""";

        using var ollamaChat = await client.PostAsync("/api/chat", Json(Llama), Cancel);
        using var openAiChat = await client.PostAsync("/v1/chat/completions", Json(Llama), Cancel);
        using var anthropic = await client.PostAsync("/v1/messages", Json(Llama), Cancel);
        using var tags = await client.GetAsync("/api/tags", Cancel);
        using var models = await client.GetAsync("/v1/models", Cancel);

        foreach (var response in new[] { ollamaChat, openAiChat, anthropic, tags, models })
        {
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Equal("internal error in ClaudeProxy", await ErrorOf(ollamaChat));
        Assert.Equal("internal error in ClaudeProxy", await ErrorOf(tags));
        Assert.Equal("internal error in ClaudeProxy", (await Body(openAiChat)).GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("internal error in ClaudeProxy", (await Body(models)).GetProperty("error").GetProperty("message").GetString());
        var anthropicBody = await Body(anthropic);
        Assert.Equal("error", anthropicBody.GetProperty("type").GetString());
        Assert.Equal("api_error", anthropicBody.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(5, gateway.Errors.Entries.Count(entry => entry.Contains("An unhandled exception answered", StringComparison.Ordinal) && entry.Contains(BrokenProxyState.Bug, StringComparison.Ordinal)));
    }

    private static async Task<JsonElement> Body(HttpResponseMessage response) => await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);

    private static async Task<string?> ErrorOf(HttpResponseMessage response) => (await Body(response)).GetProperty("error").GetString();

    /// <summary>A bug where the gateway reads YARP's state: each look throws.</summary>
    private sealed class BrokenProxyState : IProxyStateLookup
    {
        public const string Bug = "a bug in reading the proxy's state";

        public bool TryGetRoute(string id, [NotNullWhen(true)] out RouteModel? route) => throw new InvalidOperationException(Bug);

        public IEnumerable<RouteModel> GetRoutes() => throw new InvalidOperationException(Bug);

        public bool TryGetCluster(string id, [NotNullWhen(true)] out ClusterState? cluster) => throw new InvalidOperationException(Bug);

        public IEnumerable<ClusterState> GetClusters() => throw new InvalidOperationException(Bug);
    }
}
