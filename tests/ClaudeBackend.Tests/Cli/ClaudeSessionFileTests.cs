using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class ClaudeSessionFileTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("session-file-");

    [Fact]
    public void A_written_history_has_the_shape_of_the_session_file_the_real_cli_resumed()
    {
        var cli = new ClaudeCliEnvironment(Options.Create(new ClaudeBackendOptions { Environment = { ["CLAUDE_CONFIG_DIR"] = Path.Combine(_root.FullName, "config") } }));
        var session = new ClaudeCliSession(Guid.NewGuid(), Path.Combine(_root.FullName, "work"));
        ClaudeMessage[] history =
        [
            new(ClaudeMessage.UserRole, "remember the word PINEAPPLE"),
            new(ClaudeMessage.AssistantRole, "I will remember PINEAPPLE."),
            new(ClaudeMessage.UserRole, "what is 2+2?"),
            new(ClaudeMessage.UserRole, "and 3+3?"),
            new(ClaudeMessage.AssistantRole, "4 and 6"),
        ];

        Assert.True(ClaudeSessionFile.TryWrite(cli, session, history, DateTimeOffset.UnixEpoch));

        var written = Entries(Path.Combine(cli.ConfigDirectory, "projects", ClaudeCliEnvironment.ProjectFolderKeyOf(session.WorkingDirectory), $"{session.Id}.jsonl"));
        var recorded = Entries(Fixtures.PathOf("resume_written_session", "session.jsonl"));
        // Two user messages in a row are one entry, as a live turn sends them.
        Assert.Equal(["user", "assistant", "user", "assistant"], written.Select(e => e.GetProperty("type").GetString()));
        Assert.Equal("what is 2+2?\n\nand 3+3?", written[2].GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString());
        for (var i = 0; i < written.Count; i++)
        {
            Assert.Equal(Names(recorded[i]), Names(written[i]));
            Assert.Equal(Names(recorded[i].GetProperty("message")), Names(written[i].GetProperty("message")));
            Assert.Equal(i == 0 ? null : written[i - 1].GetProperty("uuid").GetString(), written[i].GetProperty("parentUuid").GetString());
            Assert.Equal(session.Id.ToString(), written[i].GetProperty("sessionId").GetString());
        }

        Assert.True(Directory.Exists(session.WorkingDirectory));
    }

    [Fact]
    public void A_working_directory_whose_project_folder_the_cli_would_hash_gets_no_file()
    {
        var cli = new ClaudeCliEnvironment(Options.Create(new ClaudeBackendOptions { Environment = { ["CLAUDE_CONFIG_DIR"] = Path.Combine(_root.FullName, "config") } }));
        var session = new ClaudeCliSession(Guid.NewGuid(), Path.Combine(_root.FullName, new string('w', 220)));

        Assert.False(ClaudeSessionFile.TryWrite(cli, session, [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello")], DateTimeOffset.UnixEpoch));
    }

    private static List<JsonElement> Entries(string path) =>
        [.. File.ReadAllLines(path).Where(line => line.Length > 0).Select(line => JsonDocument.Parse(line).RootElement)];

    private static List<string> Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    public void Dispose() => _root.Delete(recursive: true);
}
