using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class ClaudeCliEnvironmentTests : IDisposable
{
    private readonly string _config = Directory.CreateTempSubdirectory("cli-config-").FullName;

    private ClaudeCliEnvironment NewEnvironment(Dictionary<string, string> variables) =>
        new(Options.Create(new ClaudeBackendOptions { Environment = variables }));

    /// <summary>The folders the real CLI made under its config folder (tests/Fixtures/session_files_per_working_directory).</summary>
    private static string[] RecordedTree() =>
        File.ReadAllLines(Fixtures.PathOf("session_files_per_working_directory", "tree.txt")).Where(l => !l.StartsWith('#')).ToArray();

    [Theory]
    [InlineData("/tmp/claudeproxy-fixture/ephemeral")]
    [InlineData("/tmp/claudeproxy-fixture/work.dir_1")]
    public void The_project_folder_of_a_working_directory_is_the_one_the_cli_makes(string workingDirectory)
    {
        foreach (var entry in RecordedTree().Where(e => !e.EndsWith(".jsonl", StringComparison.Ordinal)))
        {
            Directory.CreateDirectory(Path.Combine(_config, entry));
        }

        var folder = NewEnvironment(new() { ["CLAUDE_CONFIG_DIR"] = _config }).ProjectFolderOf(workingDirectory);

        Assert.NotNull(folder);
        Assert.Contains("./" + Path.GetRelativePath(_config, folder), RecordedTree());
    }

    [Fact]
    public void Deleting_a_sessions_state_removes_its_project_folder_and_its_session_environment()
    {
        var environment = NewEnvironment(new() { ["HOME"] = _config });
        var session = Guid.NewGuid();
        var project = Path.Combine(_config, ".claude", "projects", "-work-conversations-abc");
        Directory.CreateDirectory(Path.Combine(project, "memory"));
        File.WriteAllText(Path.Combine(project, session + ".jsonl"), "{}");
        Directory.CreateDirectory(Path.Combine(_config, ".claude", "session-env", session.ToString()));
        var other = Path.Combine(_config, ".claude", "projects", "-work-conversations-abd");
        Directory.CreateDirectory(other);

        environment.DeleteWorkingDirectory("/work/conversations/abc", session);

        Assert.False(Directory.Exists(project));
        Assert.False(Directory.Exists(Path.Combine(_config, ".claude", "session-env", session.ToString())));
        Assert.True(Directory.Exists(other));
    }

    [Fact]
    public void Every_cli_process_gets_the_quiet_variables_and_the_operators_own()
    {
        var variables = NewEnvironment(new() { ["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:1", ["DISABLE_TELEMETRY"] = "0" }).Variables;

        Assert.Equal("1", variables["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]);
        Assert.Equal("0", variables["DISABLE_TELEMETRY"]);
        Assert.Equal("http://127.0.0.1:1", variables["ANTHROPIC_BASE_URL"]);
        Assert.Equal("2", variables["CLAUDE_CODE_MAX_RETRIES"]);
    }

    public void Dispose() => Directory.Delete(_config, recursive: true);
}
