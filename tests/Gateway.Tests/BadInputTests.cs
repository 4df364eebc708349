using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using CsCheck;

namespace ClaudeProxy.Gateway.Tests;

/// <summary>Hostile or broken input gets a clear 4xx in the client's dialect: never a 5xx, a crash or a stray process.</summary>
public sealed class BadInputTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, int> Cases => new()
    {
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":""", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":"hi"}""", 400 },
        { "/api/chat", """{"model":123,"messages":[{"role":"user","content":"x"}]}""", 400 },
        { "/api/chat", """{"messages":[{"role":"user","content":"x"}]}""", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":[{"role":"hacker","content":"x"}]}""", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":{"nested":true}}]}""", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":[{"role":"assistant","content":"only me"}]}""", 400 },
        { "/api/chat", """{"model":"../../etc/passwd","messages":[{"role":"user","content":"x"}]}""", 404 },
        { "/api/chat", """{"model":"claude-sonnet:latest; rm -rf /","messages":[{"role":"user","content":"x"}]}""", 404 },
        { "/api/chat", """{"model":"claude-sonnet:latest","stream":false,"id":"../../../../tmp/x","options":{"temperature":"hot","num_ctx":null,"mirostat":2},"messages":[{"role":"user","content":"x"}]}""", 200 },
        { "/api/generate", """{"model":"claude-sonnet:latest","prompt":42}""", 400 },
        { "/api/generate", """{"model":"claude-sonnet:latest","prompt":"x","images":["not base64!"]}""", 400 },
        { "/v1/chat/completions", """{"model":"claude-sonnet:latest","messages":[]}""", 400 },
        { "/v1/chat/completions", """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":[{"type":"audio"}]}]}""", 400 },
        { "/v1/chat/completions", """{"model":"claude-sonnet:latest","stream":"yes","messages":[{"role":"user","content":"x"}]}""", 400 },
        { "/v1/chat/completions", "[]", 400 },
        { "/chat/completions", "null", 400 },
        { "/api/show", "{}", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":[null]}""", 400 },
        { "/api/chat", """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x","images":[null]}]}""", 400 },
        { "/api/generate", """{"model":"claude-sonnet:latest","prompt":"x","images":[null]}""", 400 },
        { "/v1/chat/completions", """{"model":"claude-sonnet:latest","messages":[null]}""", 400 },
        { "/v1/messages", """{"model":"claude-sonnet:latest","max_tokens":10,"messages":[{"role":"user","content":"x"}],"tools":[null]}""", 400 },
        { "/v1/messages", """{"model":"claude-sonnet:latest","max_tokens":10,"messages":[{"role":"user","content":"x"}],"stop_sequences":[null]}""", 400 },
        { "/v1/responses", """{"model":"claude-sonnet:latest","input":"x","tools":[null]}""", 400 },
        { "/v1/chat/completions", """{"model":"claude-sonnet:latest","id":"a\nINFO forged line","messages":[{"role":"user","content":"x"}]}""", 400 },
        { "/api/chat", $$"""{"model":"claude-sonnet:latest","user":"{{new string('u', 1025)}}","messages":[{"role":"user","content":"x"}]}""", 400 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_bad_request_gets_a_clear_answer_in_its_dialect(string path, string body, int status)
    {
        await using var app = GatewayApp.WithFakeCli();

        using var response = await app.CreateClient().PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"), Cancel);

        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Cancel)).RootElement;
        if (status != 200)
        {
            var message = path.StartsWith("/v1", StringComparison.Ordinal) || path.StartsWith("/chat", StringComparison.Ordinal)
                ? error.GetProperty("error").GetProperty("message").GetString()
                : error.GetProperty("error").GetString();
            Assert.False(string.IsNullOrWhiteSpace(message));
        }

        Assert.Empty(app.Errors.Entries);
    }

    [Fact]
    public async Task Deeply_nested_json_and_invalid_utf8_are_400s()
    {
        await using var app = GatewayApp.WithFakeCli();
        var client = app.CreateClient();
        var nested = """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x","extra":""" + new string('[', 5000) + new string(']', 5000) + "}]}";
        byte[] invalidUtf8 = [.. """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":" """u8, 0xC3, 0x28, 0xFF, .. "\"}]}"u8];

        using var deep = await client.PostAsync("/api/chat", new StringContent(nested), Cancel);
        using var bytes = await client.PostAsync("/v1/chat/completions", new ByteArrayContent(invalidUtf8), Cancel);

        Assert.True(deep.StatusCode == HttpStatusCode.BadRequest, await deep.Content.ReadAsStringAsync(Cancel));
        Assert.True(bytes.StatusCode == HttpStatusCode.BadRequest, await bytes.Content.ReadAsStringAsync(Cancel));
        Assert.Empty(app.Errors.Entries);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413_in_the_clients_dialect()
    {
        // Kestrel enforces the limit (TestServer does not), so this runs on a real socket.
        await using var app = GatewayApp.WithFakeCli(kestrel: true, configure: s => s["Gateway:MaxRequestBodyBytes"] = "65536");
        var huge = """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":" """ + new string('x', 200_000) + "\"}]}";

        using var ollama = await app.CreateClient().PostAsync("/api/chat", new StringContent(huge), Cancel);
        using var openAi = await app.CreateClient().PostAsync("/v1/chat/completions", new StringContent(huge), Cancel);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, ollama.StatusCode);
        Assert.NotEmpty(JsonDocument.Parse(await ollama.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("error").GetString()!);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, openAi.StatusCode);
        Assert.Equal("invalid_request_error", JsonDocument.Parse(await openAi.Content.ReadAsStringAsync(Cancel)).RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("claude-sonnet:latest")]
    [InlineData("llama3.2")]
    public async Task A_chunked_body_that_goes_over_the_limit_after_its_model_is_a_413_in_the_clients_dialect(string model)
    {
        // The model comes first and the rest later, so the request is on its way (to its backend, or to the gateway's own
        // answer for a Claude model's token count) when it goes over.
        using var ollama = FakeOllama.Start();
        await using var app = GatewayApp.WithFakeCli(kestrel: true, configure: s =>
        {
            s["Gateway:MaxRequestBodyBytes"] = "4096";
            GatewayApp.WithOllama(ollama.Url)(s);
        });
        var server = app.CreateClient().BaseAddress!;
        var opening = $$"""{"model":"{{model}}","stream":false,"messages":[{"role":"user","content":" """;
        var rest = new string('x', 8192) + "\"}]}";

        var ollamaDialect = await PostInTwoChunksAsync(server, "/api/chat", opening, rest);
        var openAi = await PostInTwoChunksAsync(server, "/v1/chat/completions", opening, rest);
        var anthropicCount = await PostInTwoChunksAsync(server, "/v1/messages/count_tokens", opening, rest);

        Assert.StartsWith("HTTP/1.1 413 ", ollamaDialect, StringComparison.Ordinal);
        Assert.Contains("""{"error":"Request body too large""", ollamaDialect, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 413 ", openAi, StringComparison.Ordinal);
        Assert.Contains("""{"error":{"message":"Request body too large""", openAi, StringComparison.Ordinal);
        Assert.Contains("\"type\":\"invalid_request_error\"", openAi, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 413 ", anthropicCount, StringComparison.Ordinal);
        Assert.Contains("""{"type":"error","error":{""", anthropicCount, StringComparison.Ordinal);
        Assert.Contains("\"message\":\"Request body too large", anthropicCount, StringComparison.Ordinal);
        Assert.Empty(app.Errors.Entries);
    }

    [Fact]
    public async Task Thousands_of_generated_bodies_never_get_a_5xx_nor_leave_a_process_beyond_the_kept_ones()
    {
        // A shell script stands in for the CLI here: it answers each stdin line in milliseconds, so thousands of requests
        // stay quick, and ends when stdin closes, as the CLI does.
        var cli = Path.Combine(Directory.CreateTempSubdirectory("fuzz-cli-").FullName, "claude");
        await File.WriteAllTextAsync(cli, $"#!/bin/sh\nwhile read -r line; do cat '{Fixtures.StdoutPath("print_stream_json_partial")}'; done\n", Cancel);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(cli, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var app = GatewayApp.WithFakeCli(configure: s =>
        {
            s["ClaudeBackend:CliPath"] = cli;
            s["ClaudeBackend:MaxKeptProcesses"] = "3";
        });
        var client = app.CreateClient();
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();

        await Bodies.SampleAsync(async request =>
        {
            using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Path) { Content = new ByteArrayContent(request.Body) };
            using var response = await client.SendAsync(message, Cancel);
            await response.Content.ReadAsByteArrayAsync(Cancel);
            statuses.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
            return (int)response.StatusCode < 500;
        }, iter: 2000, threads: 4, seed: "0N0XIzNsQ0O2");

        Assert.Contains(200, statuses.Keys);
        Assert.Contains(400, statuses.Keys);
        Assert.Empty(app.Errors.Entries);
        // Only the processes kept for conversations with an id stay, within their bound, and they end with the gateway.
        Assert.InRange(ProcessProbe.FindStartedByGateway(app.Marker).Count, 0, 3);
        var marker = app.Marker;
        await app.DisposeAsync();
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(10)));
    }

    /// <summary>
    /// Posts a chunked body over a socket of its own, its opening at once and the rest a moment later; the raw answer.
    /// (A body HttpClient streamed, flushed between its parts, arrived here in one piece: the model peek refused it whole,
    /// on the path that was already right.)
    /// </summary>
    private static async Task<string> PostInTwoChunksAsync(Uri server, string path, string opening, string rest)
    {
        static string Chunk(string data) => $"{Encoding.UTF8.GetByteCount(data):x}\r\n{data}\r\n";

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, Cancel);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(
            $"POST {path} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{Chunk(opening)}"), Cancel);
        // The input's shape, not a wait for the gateway: the rest follows once the opening has gone out.
        await Task.Delay(200, Cancel);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(Chunk(rest) + "0\r\n\r\n"), Cancel);
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        while (!answer.ToString().EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(buffer, Cancel) is > 0 and var read)
        {
            answer.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }

        return answer.ToString();
    }

    private sealed record FuzzRequest(string Method, string Path, byte[] Body)
    {
        public override string ToString() => $"{Method} {Path} {Encoding.UTF8.GetString(Body)}";
    }

    private static readonly Gen<string> AnyText = Gen.OneOf(
        Gen.Const(""), Gen.Const("hi"), Gen.Const("/clear"), Gen.Const("../../etc"), Gen.Const("\u0000\u2028🙂"),
        Gen.String[0, 40], Gen.Char['a', 'z'].Array[1, 300].Select(c => new string(c)));

    private static readonly Gen<string> JsonValue = Gen.OneOf(
        AnyText.Select(t => JsonSerializer.Serialize(t)),
        Gen.Int.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Const("null"), Gen.Const("true"), Gen.Const("[]"), Gen.Const("{}"), Gen.Const("[[[[1]]]]"));

    private static readonly Gen<string> Message = Gen.Select(
        Gen.OneOf(Gen.Const("user"), Gen.Const("assistant"), Gen.Const("system"), Gen.Const("tool"), Gen.Const("USER"), Gen.Const("developer"), AnyText),
        Gen.OneOf(AnyText.Select(t => JsonSerializer.Serialize(t)), JsonValue, Gen.Const("""[{"type":"text","text":"part"}]"""), Gen.Const("""[{"type":"image_url","image_url":{"url":"http://x"}}]""")),
        (role, content) => $$"""{"role":{{JsonSerializer.Serialize(role)}},"content":{{content}}}""");

    private static readonly Gen<string> Model = Gen.OneOf(
        Gen.Const("\"claude-sonnet:latest\""), Gen.Const("\"claude-haiku\""), Gen.Const("\"claude-3-7-sonnet-latest\""), JsonValue);

    private static readonly Gen<string> JsonBody = Gen.Select(
        Model, Message.Array[0, 4], Gen.OneOf(Gen.Const(""), Gen.Const(",\"stream\":false"), Gen.Const(",\"stream\":true"), Gen.Const(",\"stream\":\"no\"")),
        Gen.OneOf(Gen.Const(""), JsonValue.Select(v => $",\"id\":{v}"), JsonValue.Select(v => $",\"options\":{v}"), JsonValue.Select(v => $",\"prompt\":{v}"), JsonValue.Select(v => $",\"format\":{v}")),
        Gen.Bool,
        (model, messages, stream, extra, hasModel) => "{" + (hasModel ? $"\"model\":{model}," : "") + $"\"messages\":[{string.Join(",", messages)}]{stream}{extra}" + "}");

    private static readonly Gen<byte[]> Body = Gen.Frequency(
        (8, JsonBody.Select(Encoding.UTF8.GetBytes)),
        (1, JsonBody.Select(b => Encoding.UTF8.GetBytes(b[..(b.Length / 2)]))),
        (1, Gen.Byte.Array[0, 200]));

    private static readonly Gen<FuzzRequest> Bodies = Gen.Select(
        Gen.OneOf(
            Gen.Const(("POST", "/api/chat")), Gen.Const(("POST", "/api/generate")), Gen.Const(("POST", "/v1/chat/completions")),
            Gen.Const(("POST", "/chat/completions")), Gen.Const(("POST", "/api/show")), Gen.Const(("POST", "/api/embed")),
            Gen.Const(("POST", "/api/pull")), Gen.Const(("DELETE", "/api/delete")), Gen.Const(("GET", "/v1/models/claude-opus:latest")),
            Gen.Const(("GET", "/api/tags"))),
        Body,
        (endpoint, body) => new FuzzRequest(endpoint.Item1, endpoint.Item2, endpoint.Item1 == "GET" ? [] : body));
}
