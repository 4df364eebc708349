using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>The gateway as its own process, stopped with SIGTERM as a service manager would.</summary>
public sealed class ShutdownTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sigterm_ends_the_cli_processes_and_keeps_the_conversation_mappings()
    {
        var data = Directory.CreateTempSubdirectory("shutdown-data-").FullName;
        var replay = Path.Combine(data, "replay.txt");
        File.Copy(Fixtures.StdoutPath("print_stream_json_partial"), replay);
        var marker = Guid.NewGuid().ToString("N");
        using var gateway = await GatewayProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "ClaudeProxy.Gateway.dll"), new Dictionary<string, string>
        {
            ["OLLAMA_URL"] = "none",
            ["ClaudeBackend__Models__0__WarmSpares"] = "0",
            ["ClaudeBackend__Models__0__WarmConversationSpares"] = "0",
            ["CLAUDE_CLI"] = RepoPaths.FakeClaudeCli,
            ["ClaudeBackend__DataDirectory"] = data,
            ["ClaudeBackend__Environment__FAKE_CLAUDE_SCRIPT"] = $"replay={replay}",
            [$"ClaudeBackend__Environment__{ProcessProbe.MarkerVariable}"] = marker,
        });
        var client = gateway.Client;

        // A kept conversation, then an answer that is still streaming when the gateway is told to stop.
        using var kept = await client.PostAsync("/api/chat", new StringContent("""{"model":"claude-sonnet:latest","id":"keep-me","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel);
        Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        await File.WriteAllLinesAsync(replay, [.. Fixtures.StdoutLines("print_stream_json_partial").Take(6), "#hang"], Cancel);
        var mapping = await File.ReadAllTextAsync(Path.Combine(data, "conversations.json"), Cancel);

        using var streaming = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat")
        {
            Content = new StringContent("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"x"}]}"""),
        }, HttpCompletionOption.ResponseHeadersRead, Cancel);
        var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync(Cancel));
        Assert.NotNull(await reader.ReadLineAsync(Cancel));
        Assert.NotEmpty(ProcessProbe.FindMarked(marker));

        using (var kill = Process.Start("kill", ["-TERM", gateway.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Cancel);
        }

        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        stopped.CancelAfter(TimeSpan.FromSeconds(20));
        await gateway.Process.WaitForExitAsync(stopped.Token);

        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(5)));
        // The client heard about it: its stream ended, with an error line rather than a silent cut.
        var rest = await reader.ReadToEndAsync(Cancel);
        Assert.Contains("\"error\"", rest, StringComparison.Ordinal);
        Assert.Equal(mapping, await File.ReadAllTextAsync(Path.Combine(data, "conversations.json"), Cancel));
        Assert.Contains("keep-me", mapping, StringComparison.Ordinal);
        JsonDocument.Parse(mapping);
    }
}
