using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests;

/// <summary>Claude chats through the whole gateway, with tests/FakeClaude standing in for the CLI where it must misbehave.</summary>
public sealed class ClaudeChatTests
{
    private const string OllamaChat = """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"hello"}]}""";
    private const string OpenAiStream = """{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static string Fixture(string name) => Fixtures.StdoutPath(name);

    [Fact]
    public async Task The_prompt_reaches_the_cli_on_stdin_and_never_in_its_arguments()
    {
        await using var app = GatewayApp.WithFakeCli();
        var client = app.CreateClient();

        using var response = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"system","content":"SYSTEM-SECRET"},{"role":"user","content":"PROMPT-SECRET"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var start = JsonDocument.Parse(File.ReadAllLines(app.FakeCliLog).Single()).RootElement;
        var arguments = start.GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
        Assert.Contains("PROMPT-SECRET", start.GetProperty("stdin").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(arguments, a => a.Contains("SECRET", StringComparison.Ordinal));
        Assert.Equal("sonnet", arguments[arguments.IndexOf("--model") + 1]);
        Assert.Equal("SYSTEM-SECRET", start.GetProperty("systemPrompt").GetString());
        Assert.Empty(start.GetProperty("cwdEntries").EnumerateArray());
        // The throw-away working directory and the system prompt file are gone with the turn.
        Assert.False(Directory.Exists(start.GetProperty("cwd").GetString()));
        Assert.False(File.Exists(arguments[arguments.IndexOf("--system-prompt-file") + 1]));
    }

    [Theory]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("text/plain")]
    public async Task A_body_is_read_as_json_whatever_its_content_type(string mediaType)
    {
        await using var app = GatewayApp.WithFakeCli();

        var (response, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/api/chat", Json(OllamaChat, mediaType), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("fake answer", lines[0].Parse().GetProperty("message").GetProperty("content").GetString());
        Assert.True(lines[^1].Parse().GetProperty("done").GetBoolean());
    }

    [Fact]
    public async Task A_cli_that_crashes_mid_answer_ends_the_ollama_stream_with_an_error_line()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture("print_stream_json_partial")};crash-after=6");

        var (response, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/api/chat", Json(OllamaChat), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello, s", lines[0].Parse().GetProperty("message").GetProperty("content").GetString());
        Assert.Contains("exited with code 3", lines[^1].Parse().GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cli_that_crashes_mid_answer_ends_the_openai_stream_with_an_error_frame()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture("print_stream_json_partial")};crash-after=6");

        var (_, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/v1/chat/completions", Json(OpenAiStream), Cancel);

        var error = lines.SseData()[^1].GetProperty("error");
        Assert.Contains("exited with code 3", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.Text == "data: [DONE]");
    }

    [Fact]
    public async Task A_cli_that_fails_before_answering_gets_a_status_code_and_its_stderr()
    {
        await using var app = GatewayApp.WithFakeCli("replay=/dev/null;stderr=Error: Invalid session ID. Must be a valid UUID.;exit-code=1");
        var client = app.CreateClient();

        using var ollama = await client.PostAsync("/api/chat", Json(OllamaChat), Cancel);
        using var openAi = await client.PostAsync("/v1/chat/completions", Json(OpenAiStream), Cancel);

        Assert.Equal(HttpStatusCode.BadGateway, ollama.StatusCode);
        Assert.Contains("Invalid session ID", (await ollama.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadGateway, openAi.StatusCode);
        Assert.Equal("cli_failed", (await openAi.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_cli_that_ends_cleanly_before_answering_is_tried_once_more()
    {
        var marker = Path.Combine(Directory.CreateTempSubdirectory("quit-once-").FullName, "quit");
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture("print_stream_json_partial")};quit-once={marker}");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Hello, streaming world!", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString());
        Assert.True(File.Exists(marker));
        Assert.Equal(2, File.ReadAllLines(app.FakeCliLog).Length);
    }

    [Theory]
    [InlineData("error_401_stream_json", HttpStatusCode.Unauthorized)]
    [InlineData("error_529_always_stream_json_default_retries", HttpStatusCode.ServiceUnavailable)]
    [InlineData("error_500_max_retries_2_stream_json", HttpStatusCode.BadGateway)]
    public async Task Api_errors_the_cli_reports_become_status_codes_before_the_stream_starts(string fixture, HttpStatusCode expected)
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture(fixture)};exit-code=1");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json(OllamaChat), Cancel);

        Assert.Equal(expected, response.StatusCode);
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        Assert.NotEmpty((await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString()!);
    }

    [Fact]
    public async Task Garbage_on_stdout_does_not_break_the_answer()
    {
        await using var app = GatewayApp.WithFakeCli($"garbage;replay={Fixture("print_stream_json_partial")}");

        using var response = await app.CreateClient().PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);

        var answer = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.Equal("Hello, streaming world!", answer.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(3173, answer.GetProperty("prompt_eval_count").GetInt64());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_missing_cli_is_a_clear_503_that_openai_sdks_do_not_retry(bool presentButItsInterpreterIsNot)
    {
        var folder = Directory.CreateTempSubdirectory("cli-");
        var cliPath = "/nonexistent/claude";
        if (presentButItsInterpreterIsNot && !OperatingSystem.IsWindows())
        {
            // As an npm install whose node has gone: the file runs, its interpreter does not (nor does setpriv's exec of it).
            cliPath = Path.Combine(folder.FullName, "claude");
            File.WriteAllText(cliPath, "#!/nonexistent/node\n");
            File.SetUnixFileMode(cliPath, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        }

        await using var app = GatewayApp.WithFakeCli(configure: s => s["ClaudeBackend:CliPath"] = cliPath);

        using var response = await app.CreateClient().PostAsync("/v1/chat/completions", Json(OpenAiStream), Cancel);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("false", response.Headers.GetValues("x-should-retry").Single());
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error");
        Assert.Contains("CLAUDE_CLI", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("cli_unavailable", error.GetProperty("code").GetString());
        folder.Delete(recursive: true);
    }

    [Theory]
    [InlineData("/api/chat", "model 'llama3.2:latest' not found")]
    [InlineData("/api/generate", "model 'llama3.2:latest' not found")]
    public async Task A_model_no_backend_serves_is_a_404_in_ollamas_words(string path, string message)
    {
        await using var app = GatewayApp.WithFakeCli();

        using var response = await app.CreateClient().PostAsync(path, Json("""{"model":"llama3.2:latest","prompt":"x","messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(message, (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
        Assert.False(File.Exists(app.FakeCliLog));
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/chat/completions")]
    public async Task A_model_no_backend_serves_is_an_openai_404_envelope_on_both_openai_paths(string path)
    {
        await using var app = GatewayApp.WithFakeCli();

        using var response = await app.CreateClient().PostAsync(path, Json("""{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"""), Cancel);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error");
        Assert.Equal("model 'gpt-9' not found", error.GetProperty("message").GetString());
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_conversation_id_creates_a_session_then_a_fresh_process_resumes_it_with_only_the_new_turn()
    {
        // No process is kept between turns here, so the second turn needs --resume.
        await using var app = GatewayApp.WithFakeCli(configure: s => s["ClaudeBackend:MaxKeptProcesses"] = "0");
        var client = app.CreateClient();

        await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"chat-42","stream":false,"messages":[{"role":"user","content":"first"}]}"""), Cancel);
        await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"chat-42","stream":false,"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"fake answer"},{"role":"user","content":"second"}]}"""), Cancel);

        var starts = File.ReadAllLines(app.FakeCliLog).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var first = starts[0].GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
        var second = starts[1].GetProperty("args").EnumerateArray().Select(a => a.GetString()!).ToList();
        var session = first[first.IndexOf("--session-id") + 1];
        Assert.Equal(session, second[second.IndexOf("--resume") + 1]);
        Assert.Equal(starts[0].GetProperty("cwd").GetString(), starts[1].GetProperty("cwd").GetString());
        Assert.DoesNotContain("first", starts[1].GetProperty("stdin").GetString(), StringComparison.Ordinal);
        Assert.Contains("second", starts[1].GetProperty("stdin").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_answer_leaves_no_cli_process()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture("print_stream_json_partial")};hang-after=6");
        using var disconnect = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        var client = app.CreateClient();

        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json(OllamaChat) }, HttpCompletionOption.ResponseHeadersRead, disconnect.Token);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(disconnect.Token));
        Assert.NotNull(await reader.ReadLineAsync(disconnect.Token));
        Assert.NotEmpty(ProcessProbe.FindMarked(app.Marker));

        await disconnect.CancelAsync();
        response.Dispose();

        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Generate_streams_response_chunks_and_a_done_chunk()
    {
        await using var app = GatewayApp.WithFakeCli($"replay={Fixture("print_stream_json_partial")}");

        var (_, lines) = await PostAndReadLinesAsync(app.CreateClient(), "/api/generate", Json("""{"model":"claude-haiku:latest","prompt":"hello"}"""), Cancel);

        Assert.Equal("Hello, streaming world!", string.Concat(lines.Select(l => l.Parse().GetProperty("response").GetString())));
        Assert.Equal("stop", lines[^1].Parse().GetProperty("done_reason").GetString());
    }
}
