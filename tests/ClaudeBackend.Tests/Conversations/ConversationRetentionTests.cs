using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

public sealed class ConversationRetentionTests : IDisposable
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private readonly string _data = Directory.CreateTempSubdirectory("retention-data-").FullName;
    private readonly string _config = Directory.CreateTempSubdirectory("retention-config-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly RecordingLauncher _launcher = new();
    private readonly ClaudeBackendOptions _settings;
    private readonly ConversationStore _store;
    private readonly ClaudeCliEnvironment _cli;
    private readonly ConversationRetention _retention;

    public ConversationRetentionTests()
    {
        _settings = new ClaudeBackendOptions
        {
            DataDirectory = _data,
            ConversationIdleLimit = TimeSpan.FromDays(30),
            MaxConversations = 3,
            RetentionInterval = TimeSpan.FromHours(1),
            Environment = new() { ["CLAUDE_CONFIG_DIR"] = _config },
        };
        var options = Options.Create(_settings);
        _store = new ConversationStore(options, _time);
        _cli = new ClaudeCliEnvironment(options);
        _retention = new ConversationRetention(_store, _launcher, _cli, options, _time, NullLogger<ConversationRetention>.Instance);
    }

    /// <summary>A conversation as a real turn leaves it: mapping, working directory, and the CLI's project folder with the session.</summary>
    private async Task<ClaudeCliSession> AddConversationAsync(string key)
    {
        var session = new ClaudeCliSession(Guid.NewGuid(), _store.WorkingDirectoryOf(key));
        Directory.CreateDirectory(session.WorkingDirectory);
        var project = Path.Combine(_config, "projects", ClaudeCliEnvironment.ProjectFolderKeyOf(session.WorkingDirectory));
        Directory.CreateDirectory(Path.Combine(project, "memory"));
        await File.WriteAllTextAsync(Path.Combine(project, session.Id + ".jsonl"), "{}", Cancel);
        await _store.RememberAsync(key, session, Cancel);
        return session;
    }

    private bool HasFiles(ClaudeCliSession session) =>
        Directory.Exists(session.WorkingDirectory) || _cli.ProjectFolderOf(session.WorkingDirectory) is not null;

    [Fact]
    public async Task A_conversation_unused_past_the_idle_limit_loses_its_mapping_folder_and_session_files_together()
    {
        var old = await AddConversationAsync("-:old");
        _time.Advance(TimeSpan.FromDays(20));
        var recent = await AddConversationAsync("-:recent");
        _time.Advance(TimeSpan.FromDays(11));

        Assert.Equal(1, await _retention.SweepAsync(Cancel));

        Assert.Null(await _store.FindAsync("-:old", Cancel));
        Assert.False(HasFiles(old));
        Assert.Equal([old.Id], _launcher.EndedSessions);
        Assert.Equal(recent, await _store.FindAsync("-:recent", Cancel));
        Assert.True(Directory.Exists(recent.WorkingDirectory));
        Assert.NotNull(_cli.ProjectFolderOf(recent.WorkingDirectory));
    }

    [Fact]
    public async Task Beyond_the_cap_the_conversations_unused_the_longest_go_first()
    {
        List<ClaudeCliSession> sessions = [];
        foreach (var key in (string[])["-:a", "-:b", "-:c", "-:d", "-:e"])
        {
            sessions.Add(await AddConversationAsync(key));
            _time.Advance(TimeSpan.FromMinutes(1));
        }

        // Using "a" again makes it the most recent.
        await _store.RememberAsync("-:a", sessions[0], Cancel);

        Assert.Equal(2, await _retention.SweepAsync(Cancel));

        Assert.Equal(["-:a", "-:d", "-:e"], (await _store.ListAsync(Cancel)).Select(c => c.Key).Order());
        Assert.False(HasFiles(sessions[1]));
        Assert.False(HasFiles(sessions[2]));
        Assert.Equal(3, Directory.GetDirectories(_store.WorkRoot).Length);
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(_config, "projects")).Length);
    }

    [Fact]
    public async Task A_conversation_with_a_turn_running_is_left_for_a_later_sweep()
    {
        var busy = await AddConversationAsync("-:busy");
        _time.Advance(TimeSpan.FromDays(31));
        var turn = await _store.EnterTurnAsync("-:busy", Cancel);

        Assert.Equal(0, await _retention.SweepAsync(Cancel));
        Assert.Equal(busy, await _store.FindAsync("-:busy", Cancel));
        Assert.Empty(_launcher.EndedSessions);

        turn.Dispose();
        Assert.Equal(1, await _retention.SweepAsync(Cancel));
        Assert.False(HasFiles(busy));
    }

    [Fact]
    public async Task The_limits_are_applied_every_interval()
    {
        var session = await AddConversationAsync("-:x");
        using var stop = new CancellationTokenSource();
        var running = _retention.RunAsync(stop.Token);

        _time.Advance(TimeSpan.FromDays(31));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await _store.FindAsync("-:x", Cancel) is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10, Cancel);
        }

        await stop.CancelAsync();
        await running;
        Assert.Null(await _store.FindAsync("-:x", Cancel));
        Assert.False(HasFiles(session));
    }

    [Fact]
    public async Task At_start_folders_no_conversation_names_are_cleared_but_not_recent_ones()
    {
        var kept = await AddConversationAsync("-:kept");
        var orphan = Path.Combine(_store.WorkRoot, "new-0123");
        Directory.CreateDirectory(orphan);
        var orphanProject = Path.Combine(_config, "projects", ClaudeCliEnvironment.ProjectFolderKeyOf(orphan));
        Directory.CreateDirectory(Path.Combine(orphanProject, "memory"));
        var turnProject = Path.Combine(_config, "projects", ClaudeCliEnvironment.ProjectFolderKeyOf(Path.Combine(Path.GetTempPath(), "claudeproxy-turn-abc")));
        Directory.CreateDirectory(Path.Combine(turnProject, "memory"));
        var usersOwnProject = Path.Combine(_config, "projects", "-home-ada-src-app");
        Directory.CreateDirectory(usersOwnProject);
        foreach (var folder in (string[])[orphan, orphanProject, turnProject, usersOwnProject])
        {
            Directory.SetLastWriteTimeUtc(folder, _time.GetUtcNow().UtcDateTime.AddHours(-1));
        }

        var young = Path.Combine(_store.WorkRoot, "new-4567");
        Directory.CreateDirectory(young);
        Directory.SetLastWriteTimeUtc(young, _time.GetUtcNow().UtcDateTime);

        // The orphan working directory goes with its project folder; the throw-away turn's project folder on its own.
        Assert.Equal(2, await _retention.RemoveLeftoversAsync(Cancel));

        Assert.False(Directory.Exists(orphan));
        Assert.False(Directory.Exists(orphanProject));
        Assert.False(Directory.Exists(turnProject));
        Assert.True(Directory.Exists(usersOwnProject));
        Assert.True(Directory.Exists(young));
        Assert.True(HasFiles(kept));
        Assert.NotNull(_cli.ProjectFolderOf(kept.WorkingDirectory));
    }

    public void Dispose()
    {
        Directory.Delete(_data, recursive: true);
        Directory.Delete(_config, recursive: true);
    }

    private sealed class RecordingLauncher : IClaudeCliLauncher
    {
        public List<Guid> EndedSessions { get; } = [];

        public ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken) =>
            throw new NotSupportedException("Retention starts no process.");

        public Task StopAllAsync() => Task.CompletedTask;

        public Task EndSessionAsync(Guid sessionId)
        {
            EndedSessions.Add(sessionId);
            return Task.CompletedTask;
        }
    }
}
