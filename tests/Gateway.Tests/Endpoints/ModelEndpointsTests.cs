using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;

namespace ClaudeProxy.Gateway.Tests.Endpoints;

public sealed class ModelEndpointsTests : IAsyncLifetime
{
    private readonly GatewayApp _app = GatewayApp.WithFakeCli();
    private HttpClient _client = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _client = _app.CreateClient();
        return ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public async Task The_root_says_ollama_is_running(string method)
    {
        using var response = await _client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/"), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (method == "GET")
        {
            Assert.Equal("Ollama is running", await response.Content.ReadAsStringAsync(Cancel));
        }
    }

    [Theory]
    [InlineData("/api/version")]
    [InlineData("/version")]
    public async Task The_version_is_numeric_as_open_webui_parses_it(string path)
    {
        var version = (await _client.GetFromJsonAsync<JsonElement>(path, Cancel)).GetProperty("version").GetString();

        Assert.Matches(@"^\d+\.\d+\.\d+$", version);
        Assert.True(Version.Parse(version!) >= new Version(0, 6, 4));
    }

    [Fact]
    public async Task Tags_list_the_claude_models_with_names_open_webui_can_chat_with()
    {
        using var response = await _client.GetAsync("/api/tags", Cancel);
        var models = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("models");

        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"], models.EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        Assert.All(models.EnumerateArray(), m =>
        {
            Assert.Equal(m.GetProperty("name").GetString(), m.GetProperty("model").GetString());
            Assert.Matches("^[0-9a-f]{64}$", m.GetProperty("digest").GetString());
            Assert.Equal(JsonValueKind.Number, m.GetProperty("size").ValueKind);
            Assert.True(DateTimeOffset.TryParse(m.GetProperty("modified_at").GetString(), out _));
            Assert.Equal(JsonValueKind.Array, m.GetProperty("details").GetProperty("families").ValueKind);
        });
    }

    [Fact]
    public async Task Head_on_tags_answers_without_a_body()
    {
        using var response = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/api/tags"), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Cancel));
    }

    [Theory]
    [InlineData("""{"model":"claude-sonnet:latest"}""")]
    [InlineData("""{"name":"claude-sonnet"}""")]
    [InlineData("""{"model":"claude-3-7-sonnet-latest"}""")]
    public async Task Show_reports_capabilities_and_context_length(string body)
    {
        using var response = await _client.PostAsync("/api/show", new StringContent(body), Cancel);
        var show = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("completion", show.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Contains("tools", show.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal("claude", show.GetProperty("model_info").GetProperty("general.architecture").GetString());
        Assert.Equal(200000, show.GetProperty("model_info").GetProperty("claude.context_length").GetInt32());
    }

    [Fact]
    public async Task Show_of_an_unknown_model_is_404_in_ollamas_words()
    {
        using var response = await _client.PostAsync("/api/show", new StringContent("""{"model":"nope:1b"}"""), Cancel);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model 'nope:1b' not found", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Ps_is_an_empty_list_while_no_cli_process_waits_for_a_turn()
    {
        var ps = await _client.GetFromJsonAsync<JsonElement>("/api/ps", Cancel);

        Assert.Equal(JsonValueKind.Array, ps.GetProperty("models").ValueKind);
    }

    [Theory]
    [InlineData("/v1/models")]
    [InlineData("/models")]
    public async Task OpenAi_model_lists_show_the_same_models(string path)
    {
        var list = await _client.GetFromJsonAsync<JsonElement>(path, Cancel);

        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.Equal(["claude-sonnet:latest", "claude-opus:latest", "claude-haiku:latest"], list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.All(list.GetProperty("data").EnumerateArray(), m => Assert.Equal("model", m.GetProperty("object").GetString()));
    }

    [Fact]
    public async Task One_openai_model_is_found_by_id_or_is_a_404_envelope()
    {
        var model = await _client.GetFromJsonAsync<JsonElement>("/v1/models/claude-opus:latest", Cancel);
        using var missing = await _client.GetAsync("/v1/models/gpt-9", Cancel);

        Assert.Equal("claude-opus:latest", model.GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not_found_error", (await missing.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("type").GetString());
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }
}
