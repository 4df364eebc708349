using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

public sealed class ConversationStoreTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("store-test-").FullName;

    private ConversationStore NewStore() =>
        new(Options.Create(new ClaudeBackendOptions { DataDirectory = _directory }), TimeProvider.System);

    [Fact]
    public async Task A_remembered_session_survives_a_restart()
    {
        var session = Guid.NewGuid();
        await NewStore().RememberAsync("chat-1", session, TestContext.Current.CancellationToken);

        var found = await NewStore().FindSessionAsync("chat-1", TestContext.Current.CancellationToken);

        Assert.Equal(session, found);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public async Task A_forgotten_conversation_has_no_session()
    {
        var store = NewStore();
        await store.RememberAsync("chat-1", Guid.NewGuid(), TestContext.Current.CancellationToken);

        await store.ForgetAsync("chat-1", TestContext.Current.CancellationToken);

        Assert.Null(await NewStore().FindSessionAsync("chat-1", TestContext.Current.CancellationToken));
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

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
