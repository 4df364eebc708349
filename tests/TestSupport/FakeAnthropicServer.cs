using System.Diagnostics;
using System.Text.Json;

namespace ClaudeProxy.TestSupport;

/// <summary>
/// shared/claude-cli/fake_anthropic.py on 127.0.0.1 and a free port: the Anthropic API the real CLI talks to in tests.
/// Each test gets its own server, so reply modes and failures never leak between tests.
/// </summary>
public sealed class FakeAnthropicServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private FakeAnthropicServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    public string BaseUrl { get; }

    public string LogPath => Path.Combine(_directory, "requests.jsonl");

    /// <param name="arguments">fake_anthropic.py options, e.g. <c>--reply history</c> or <c>--fail 429</c>.</param>
    public static Task<FakeAnthropicServer> StartAsync(params string[] arguments) => StartScriptAsync([RepoPaths.FakeAnthropicScript], arguments);

    /// <summary>
    /// The fake with <paramref name="headers"/> on every <c>/v1/messages</c> answer (tests/TestSupport/fake_anthropic_with_headers.py),
    /// e.g. the <c>anthropic-ratelimit-unified-*</c> headers from which a subscription login's CLI reports its rate limits.
    /// </summary>
    public static Task<FakeAnthropicServer> StartWithHeadersAsync(IReadOnlyDictionary<string, string> headers, params string[] arguments) =>
        StartScriptAsync([RepoPaths.FakeAnthropicWithHeadersScript, RepoPaths.FakeAnthropicScript, JsonSerializer.Serialize(headers)], arguments);

    private static async Task<FakeAnthropicServer> StartScriptAsync(string[] script, string[] arguments)
    {
        var directory = Directory.CreateTempSubdirectory("fake-anthropic-").FullName;
        var portFile = Path.Combine(directory, "port.txt");
        var process = QuietProcess.Start(
            "python3", [.. script, "--host", "127.0.0.1", "--port", "0", "--port-file", portFile, "--log", Path.Combine(directory, "requests.jsonl"), .. arguments]);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!(File.Exists(portFile) && File.ReadAllText(portFile).Trim() is { Length: > 0 } text && int.TryParse(text, out _)))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("fake_anthropic.py did not start (python3 " + RepoPaths.FakeAnthropicScript + ")");
            }

            await Task.Delay(20);
        }

        return new FakeAnthropicServer(process, directory, int.Parse(File.ReadAllText(portFile).Trim()));
    }

    /// <summary>Changes the reply or failure mode of a running server (<c>POST /_fake/config</c>), e.g. <c>{"chunk_delay_ms": 200}</c>.</summary>
    public async Task ConfigureAsync(string json)
    {
        using var client = new HttpClient();
        using var response = await client.PostAsync(BaseUrl + "/_fake/config", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
    }

    /// <summary>The bodies of the <c>/v1/messages</c> requests the CLI sent, oldest first.</summary>
    public IReadOnlyList<JsonElement> MessageRequests() => [.. LoggedMessageRequests().Select(request => request.Body)];

    /// <summary>The <c>/v1/messages</c> requests the CLI sent, oldest first, with the Claude session each came from.</summary>
    public IReadOnlyList<(JsonElement Body, string? SessionId)> MessageRequestsWithSession() => LoggedMessageRequests();

    /// <summary>
    /// What the real API would refuse with a 400 in the requests sent so far: a <c>tool_use</c> without its
    /// <c>tool_result</c> in the next message, a <c>tool_result</c> whose call is not in the message before it, or two
    /// <c>tool_use</c> blocks of one id.
    /// </summary>
    public IReadOnlyList<string> UnpairedToolBlocks()
    {
        static IEnumerable<string> IdsOf(JsonElement message, string type, string property) =>
            message.GetProperty("content") is { ValueKind: JsonValueKind.Array } content
                ? content.EnumerateArray().Where(b => b.GetProperty("type").GetString() == type).Select(b => b.GetProperty(property).GetString()!)
                : [];

        List<string> unpaired = [];
        foreach (var (request, index) in MessageRequests().Select((request, index) => (request, index)))
        {
            var messages = request.GetProperty("messages").EnumerateArray().ToList();
            unpaired.AddRange(messages.SelectMany(message => IdsOf(message, "tool_use", "id")).GroupBy(id => id).Where(ids => ids.Count() > 1)
                .Select(ids => $"request {index}: tool_use id {ids.Key} is used {ids.Count()} times"));
            for (var i = 0; i < messages.Count; i++)
            {
                var calls = IdsOf(messages[i], "tool_use", "id").ToHashSet();
                var next = i + 1 < messages.Count ? IdsOf(messages[i + 1], "tool_result", "tool_use_id").ToHashSet() : [];
                var before = i > 0 ? IdsOf(messages[i - 1], "tool_use", "id").ToHashSet() : [];
                unpaired.AddRange(calls.Where(call => !next.Contains(call)).Select(call => $"request {index}: tool_use {call} has no tool_result after it"));
                unpaired.AddRange(IdsOf(messages[i], "tool_result", "tool_use_id").Where(id => !before.Contains(id)).Select(id => $"request {index}: tool_result {id} answers no tool_use before it"));
            }
        }

        return unpaired;
    }

    private List<(JsonElement Body, string? SessionId)> LoggedMessageRequests()
    {
        if (!File.Exists(LogPath))
        {
            return [];
        }

        return File.ReadAllLines(LogPath)
            .Where(line => line.Length > 0)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(entry => entry.TryGetProperty("path", out var path) && path.GetString() == "/v1/messages"
                && entry.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object)
            .Select(entry => (
                entry.GetProperty("body").Clone(),
                entry.TryGetProperty("headers", out var headers) && headers.TryGetProperty("x-claude-code-session-id", out var session) ? session.GetString() : null))
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
