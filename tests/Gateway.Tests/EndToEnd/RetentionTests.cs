using System.Net;
using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using static ClaudeProxy.Gateway.Tests.Infrastructure.StreamingReads;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>What conversations leave on disk stays bounded, with the real CLI writing its sessions.</summary>
public sealed class RetentionTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Beyond_the_cap_mappings_folders_and_session_files_go_together_and_throw_away_turns_leave_nothing()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        await using var app = GatewayApp.WithRealCli(api, configure: s =>
        {
            s["ClaudeBackend:MaxConversations"] = "2";
            s["ClaudeBackend:RetentionInterval"] = "00:00:01";
        });
        var client = app.CreateClient();
        var projects = Path.Combine(app.Home, ".claude", "projects");

        foreach (var id in (string[])["c1", "c2", "c3", "c4"])
        {
            using var turn = await client.PostAsync("/api/chat", Json($$"""{"model":"claude-sonnet:latest","id":"{{id}}","stream":false,"messages":[{"role":"user","content":"{{id}}"}]}"""), Cancel);
            Assert.Equal(HttpStatusCode.OK, turn.StatusCode);
        }

        using (var chat = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"no id"}]}"""), Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (Mappings(app).Count > 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Cancel);
        }

        Assert.Equal(["-:c3", "-:c4"], Mappings(app).Order());
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(app.DataDirectory, "conversations")).Length);
        Assert.Equal(2, Directory.GetFiles(projects, "*.jsonl", SearchOption.AllDirectories).Length);
        // The throw-away turn's folder and the project folder the CLI made for it went with the turn.
        Assert.Equal(2, Directory.GetDirectories(projects).Length);

        // A removed conversation starts afresh, from what the client sends.
        using var again = await client.PostAsync("/api/chat", Json("""{"model":"claude-sonnet:latest","id":"c1","stream":false,"messages":[{"role":"user","content":"back"}]}"""), Cancel);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    private static List<string> Mappings(GatewayApp app) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(app.DataDirectory, "conversations.json"))).RootElement
            .GetProperty("conversations").EnumerateObject().Select(p => p.Name).ToList();
}
