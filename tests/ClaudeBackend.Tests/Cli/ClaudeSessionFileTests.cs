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
    public void Calls_and_results_of_the_client_functions_are_written_as_the_tool_use_and_tool_result_blocks_the_model_saw()
    {
        var (cli, session) = NewSession("work");
        ClaudeMessage[] history =
        [
            new(ClaudeMessage.UserRole, "weather?"),
            new(ClaudeMessage.AssistantRole, "Let me check.", ToolCalls: [new("call.1", "get_weather", """{"city":"Oslo"}"""), new("call_2", "now", "")]),
            new(ClaudeMessage.UserRole, "", ToolResults: [new("call.1", "sunny"), new("call_2", "", IsError: true)]),
            new(ClaudeMessage.AssistantRole, "Sunny in Oslo."),
        ];

        Assert.True(ClaudeSessionFile.TryWrite(cli, session, history, DateTimeOffset.UnixEpoch));

        var written = Written(cli, session);
        var calls = written[1].GetProperty("message").GetProperty("content");
        Assert.Equal(["text", "tool_use", "tool_use"], calls.EnumerateArray().Select(b => b.GetProperty("type").GetString()));
        // The names the model was offered the functions by; ids the API takes (letters, digits, '_' and '-').
        Assert.Equal(("call_1", "mcp__client__get_weather", "Oslo"), (calls[1].GetProperty("id").GetString(), calls[1].GetProperty("name").GetString(), calls[1].GetProperty("input").GetProperty("city").GetString()));
        Assert.Equal(JsonValueKind.Object, calls[2].GetProperty("input").ValueKind);
        Assert.Equal("tool_use", written[1].GetProperty("message").GetProperty("stop_reason").GetString());
        var results = written[2].GetProperty("message").GetProperty("content");
        Assert.Equal([("call_1", "sunny", false), ("call_2", "", true)], results.EnumerateArray().Select(b => (b.GetProperty("tool_use_id").GetString(), b.GetProperty("content").GetString(), b.TryGetProperty("is_error", out var e) && e.GetBoolean())));
    }

    [Fact]
    public void A_written_history_has_the_shape_of_the_session_file_the_real_cli_resumed()
    {
        var (cli, session) = NewSession("work");
        ClaudeMessage[] history =
        [
            new(ClaudeMessage.UserRole, "remember the word PINEAPPLE"),
            new(ClaudeMessage.AssistantRole, "I will remember PINEAPPLE."),
            new(ClaudeMessage.UserRole, "what is 2+2?"),
            new(ClaudeMessage.UserRole, "and 3+3?"),
            new(ClaudeMessage.AssistantRole, "4 and 6"),
        ];

        Assert.True(ClaudeSessionFile.TryWrite(cli, session, history, DateTimeOffset.UnixEpoch));

        var written = Written(cli, session);
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
        var (cli, session) = NewSession(new string('w', 220));

        Assert.False(ClaudeSessionFile.TryWrite(cli, session, [new(ClaudeMessage.UserRole, "hi"), new(ClaudeMessage.AssistantRole, "hello")], DateTimeOffset.UnixEpoch));
    }

    private static List<JsonElement> Entries(string path) =>
        [.. File.ReadAllLines(path).Where(line => line.Length > 0).Select(line => JsonDocument.Parse(line).RootElement)];

    private static List<string> Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    /// <summary>A config folder of the test's own, and a session in a working directory named <paramref name="folder"/>.</summary>
    private (ClaudeCliEnvironment Cli, ClaudeCliSession Session) NewSession(string folder) => (
        new ClaudeCliEnvironment(Options.Create(new ClaudeBackendOptions { Environment = { ["CLAUDE_CONFIG_DIR"] = Path.Combine(_root.FullName, "config") } })),
        new ClaudeCliSession(Guid.NewGuid(), Path.Combine(_root.FullName, folder)));

    private static List<JsonElement> Written(ClaudeCliEnvironment cli, ClaudeCliSession session) =>
        Entries(Path.Combine(cli.ConfigDirectory, "projects", ClaudeCliEnvironment.ProjectFolderKeyOf(session.WorkingDirectory), $"{session.Id}.jsonl"));

    public void Dispose() => _root.Delete(recursive: true);
}
