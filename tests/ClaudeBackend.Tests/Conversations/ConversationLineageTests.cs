using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;

namespace ClaudeProxy.ClaudeBackend.Tests.Conversations;

public sealed class ConversationLineageTests
{
    private static readonly string Scope = ConversationLineage.ScopeOf("sonnet", "be brief", null);

    private static ClaudeMessage User(string text) => new(ClaudeMessage.UserRole, text);

    private static ClaudeMessage Assistant(string text) => new(ClaudeMessage.AssistantRole, text);

    [Fact]
    public void The_same_history_sent_again_names_the_same_session_even_with_an_answer_trimmed_by_the_client()
    {
        Assert.Equal(
            ConversationLineage.KeyOf("key-a", Scope, [User("hi"), Assistant("hello!\n")]),
            ConversationLineage.KeyOf("key-a", Scope, [User("hi"), Assistant("hello!")]));
    }

    [Fact]
    public void Another_owner_model_prompt_role_split_or_image_names_another_session()
    {
        ClaudeMessage[] history = [User("hi"), Assistant("hello")];
        var key = ConversationLineage.KeyOf("key-a", Scope, history);

        Assert.NotEqual(key, ConversationLineage.KeyOf("key-b", Scope, history));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", ConversationLineage.ScopeOf("opus", "be brief", null), history));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", ConversationLineage.ScopeOf("sonnet", "be verbose", null), history));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", ConversationLineage.ScopeOf("sonnet", "be brief", ["Read"]), history));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", ConversationLineage.ScopeOf("sonnet", "be brief", null, clientChatId: "chat-1"), history));
        Assert.NotEqual(key, ConversationStore.KeyOf("key-a", key));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", Scope, [Assistant("hi"), User("hello")]));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", Scope, [User("hi"), User(""), Assistant("hello")]));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", Scope, [User("hih"), Assistant("ello")]));
        Assert.NotEqual(key, ConversationLineage.KeyOf("key-a", Scope, [new ClaudeMessage(ClaudeMessage.UserRole, "hi", [new ClaudeImage("image/png", "AAAA")]), Assistant("hello")]));
    }
}
