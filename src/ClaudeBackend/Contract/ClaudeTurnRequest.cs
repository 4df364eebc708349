namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// The body of <c>POST /v1/turns</c>, the backend's whole request contract: one turn of a conversation
/// in a dialect-neutral form. The dialect codecs build it; the backend turns it into a CLI run.
/// </summary>
/// <param name="Model">The model name as the client asked for it (a configured Claude model or alias).</param>
/// <param name="Messages">The conversation so far, oldest first; the last message is the new user turn.</param>
/// <param name="SystemPrompt">The client's system message(s), if any.</param>
/// <param name="ConversationId">A client-chosen id that keeps a conversation in a Claude session across requests.</param>
/// <param name="Owner">Who is asking (an API key's name): conversations are kept per owner, so no caller can resume another's.</param>
/// <param name="AllowedTools">CLI tools the owner may use (an operator's allowlist); none when empty.</param>
/// <param name="ClientChatId">A chat id the client sends beside the whole history (Open WebUI's header): it keeps two chats
/// apart, while the history decides what the model sees.</param>
public sealed record ClaudeTurnRequest(
    string Model,
    IReadOnlyList<ClaudeMessage> Messages,
    string? SystemPrompt = null,
    string? ConversationId = null,
    string? Owner = null,
    IReadOnlyList<string>? AllowedTools = null,
    string? ClientChatId = null);

/// <summary>One message of the conversation. <see cref="Role"/> is <c>user</c> or <c>assistant</c>.</summary>
public sealed record ClaudeMessage(string Role, string Text, IReadOnlyList<ClaudeImage>? Images = null)
{
    public const string UserRole = "user";
    public const string AssistantRole = "assistant";
}

/// <summary>An image attached to a user message, as base64 data.</summary>
public sealed record ClaudeImage(string MediaType, string Base64Data);
