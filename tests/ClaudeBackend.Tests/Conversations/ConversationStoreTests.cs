using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

public sealed class ConversationStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("store-test-").FullName;

    private ConversationStore NewStore() =>
        new(Options.Create(new ClaudeBackendOptions { DataDirectory = _directory }), TimeProvider.System);

    [Fact]
    public async Task A_remembered_session_and_its_directory_survive_a_restart()
    {
        var session = new ClaudeCliSession(Guid.NewGuid(), "/work/x");
        await NewStore().RememberAsync("chat-1", session, TestContext.Current.CancellationToken);

        var found = await NewStore().FindAsync("chat-1", TestContext.Current.CancellationToken);

        Assert.Equal(session, found);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public async Task A_forgotten_conversation_has_no_session()
    {
        var store = NewStore();
        await store.RememberAsync("chat-1", new ClaudeCliSession(Guid.NewGuid(), "/work/x"), TestContext.Current.CancellationToken);

        await store.ForgetAsync("chat-1", TestContext.Current.CancellationToken);

        Assert.Null(await NewStore().FindAsync("chat-1", TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("/etc/passwd")]
    [InlineData("a/b\\c\0d")]
    public void A_conversation_id_cannot_name_a_path_outside_the_store(string id)
    {
        var directory = NewStore().WorkingDirectoryOf(id);

        Assert.StartsWith(Path.Combine(_directory, "conversations") + Path.DirectorySeparatorChar, directory, StringComparison.Ordinal);
        Assert.Matches("^[0-9a-f]{32}$", Path.GetFileName(directory));
    }

    [Fact]
    public async Task Turns_of_one_conversation_take_turns()
    {
        var store = NewStore();
        using var first = await store.EnterTurnAsync("chat-1", TestContext.Current.CancellationToken);

        var second = store.EnterTurnAsync("chat-1", TestContext.Current.CancellationToken);
        var other = await store.EnterTurnAsync("chat-2", TestContext.Current.CancellationToken);

        Assert.False(second.IsCompleted);
        first.Dispose();
        (await second).Dispose();
        other.Dispose();
    }

    [Fact]
    public async Task Turn_locks_are_dropped_once_no_turn_holds_or_waits_for_them()
    {
        var store = NewStore();
        using var cancelled = new CancellationTokenSource();
        var first = await store.EnterTurnAsync("chat-1", TestContext.Current.CancellationToken);
        var waiting = store.EnterTurnAsync("chat-1", cancelled.Token);
        Assert.Null(store.TryEnterTurn("chat-1"));

        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        first.Dispose();
        for (var i = 0; i < 100; i++)
        {
            (await store.EnterTurnAsync($"chat-{i}", TestContext.Current.CancellationToken)).Dispose();
        }

        Assert.Equal(0, store.ActiveTurnLocks);
        using var again = store.TryEnterTurn("chat-1");
        Assert.NotNull(again);
    }

    [Fact]
    public void A_conversations_folder_is_not_made_before_a_process_starts_there()
    {
        var directory = NewStore().WorkingDirectoryOf("chat-1");

        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task A_write_cut_short_by_a_kill_leaves_the_last_mapping_whole()
    {
        var session = Guid.NewGuid();
        await NewStore().RememberAsync("chat-1", new ClaudeCliSession(session, "/work/x"), TestContext.Current.CancellationToken);
        // What a kill -9 in the middle of the next save leaves behind: a half-written temporary file.
        await File.WriteAllTextAsync(Path.Combine(_directory, "conversations.json.0123.tmp"), "{\"conversations\":{\"chat-1\":{\"sessi", TestContext.Current.CancellationToken);

        Assert.Equal(session, (await NewStore().FindAsync("chat-1", TestContext.Current.CancellationToken))?.Id);
    }

    [Fact]
    public async Task A_damaged_file_is_set_aside_instead_of_failing_every_conversation()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "conversations.json"), "{ not json", TestContext.Current.CancellationToken);
        var store = NewStore();

        Assert.Null(await store.FindAsync("chat-1", TestContext.Current.CancellationToken));
        await store.RememberAsync("chat-1", new ClaudeCliSession(Guid.NewGuid(), "/work/x"), TestContext.Current.CancellationToken);

        Assert.Single(Directory.GetFiles(_directory, "conversations.json.corrupt-*"));
        Assert.NotNull(await NewStore().FindAsync("chat-1", TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_mapping_from_before_directories_were_stored_resumes_in_the_directory_derived_from_the_id()
    {
        var session = Guid.NewGuid();
        await File.WriteAllTextAsync(
            Path.Combine(_directory, "conversations.json"),
            """{"conversations":{"chat-1":{"sessionId":"SESSION","updatedAt":"2026-11-23T10:00:00+00:00"}}}""".Replace("SESSION", session.ToString(), StringComparison.Ordinal),
            TestContext.Current.CancellationToken);
        var store = NewStore();

        var found = await store.FindAsync("chat-1", TestContext.Current.CancellationToken);

        Assert.Equal(new ClaudeCliSession(session, store.WorkingDirectoryOf("chat-1")), found);
    }

    [Fact]
    public void The_same_conversation_id_of_two_callers_is_two_conversations()
    {
        var store = NewStore();

        Assert.NotEqual(ConversationStore.KeyOf("alice", "chat"), ConversationStore.KeyOf("bob", "chat"));
        Assert.NotEqual(store.WorkingDirectoryOf(ConversationStore.KeyOf("alice", "chat")), store.WorkingDirectoryOf(ConversationStore.KeyOf("bob", "chat")));
        Assert.NotEqual(ConversationStore.KeyOf("alice", "x/y"), ConversationStore.KeyOf("alice/x", "y"));
        Assert.NotEqual(ConversationStore.KeyOf(null, "5:alice/x"), ConversationStore.KeyOf("alice", "x"));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
