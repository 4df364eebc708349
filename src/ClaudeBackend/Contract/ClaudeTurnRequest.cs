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
/// <param name="Tools">The client's own functions, offered to the model; a call comes back to the client to run.</param>
/// <param name="Options">How the answer is to be made: effort, thinking, limits, stop sequences, structured output.</param>
public sealed record ClaudeTurnRequest(
    string Model,
    IReadOnlyList<ClaudeMessage> Messages,
    string? SystemPrompt = null,
    string? ConversationId = null,
    string? Owner = null,
    IReadOnlyList<string>? AllowedTools = null,
    string? ClientChatId = null,
    IReadOnlyList<ClaudeTool>? Tools = null,
    ClaudeTurnOptions? Options = null);

/// <summary>
/// What the client asks of the answer beyond its messages. Each field reaches the model through the CLI (effort,
/// thinking, output limit, structured output) or is enforced by the backend on the answer (stop sequences).
/// </summary>
/// <param name="Effort">The CLI's effort level (<see cref="Efforts"/>); null for the CLI's default.</param>
/// <param name="Thinking">False turns the model's thinking off; null or true leaves the CLI's default (adaptive) on.</param>
/// <param name="MaxOutputTokens">The most tokens one API response of the turn may have (the request's <c>max_tokens</c>).</param>
/// <param name="StopSequences">Texts at which the answer ends: it ends before the first one, which is not part of it.</param>
/// <param name="OutputSchema">A JSON schema the answer must match: the answer is then that JSON, checked against it.</param>
/// <param name="KeepAlive">How long a kept conversation's process waits for its next turn; zero ends it after this turn.</param>
public sealed record ClaudeTurnOptions(
    string? Effort = null,
    bool? Thinking = null,
    int? MaxOutputTokens = null,
    IReadOnlyList<string>? StopSequences = null,
    System.Text.Json.JsonElement? OutputSchema = null,
    TimeSpan? KeepAlive = null)
{
    /// <summary>The effort levels the CLI knows, lowest first (observed with 2.1.197: <c>output_config.effort</c>).</summary>
    public static IReadOnlyList<string> Efforts { get; } = ["low", "medium", "high", "xhigh", "max"];
}

/// <summary>
/// One message of the conversation. <see cref="Role"/> is <c>user</c> or <c>assistant</c>. An assistant message may
/// carry the calls the model made of the client's functions, and a user message the results of such calls.
/// </summary>
public sealed record ClaudeMessage(
    string Role,
    string Text,
    IReadOnlyList<ClaudeImage>? Images = null,
    IReadOnlyList<ClaudeToolCall>? ToolCalls = null,
    IReadOnlyList<ClaudeToolResult>? ToolResults = null)
{
    public const string UserRole = "user";
    public const string AssistantRole = "assistant";
}

/// <summary>A function of the client's, as the model is offered it.</summary>
/// <param name="Parameters">The JSON schema of its arguments, an object schema.</param>
public sealed record ClaudeTool(string Name, string? Description, System.Text.Json.JsonElement Parameters);

/// <summary>A call of a client's function: the model's <c>tool_use</c>.</summary>
/// <param name="Id">The call's id, which its result names.</param>
/// <param name="Arguments">The arguments, as the text of a JSON object.</param>
public sealed record ClaudeToolCall(string Id, string Name, string Arguments);

/// <summary>What a client's function gave back for a call (<see cref="ClaudeToolCall.Id"/>).</summary>
public sealed record ClaudeToolResult(string ToolCallId, string Content, bool IsError = false);

/// <summary>An image attached to a user message, as base64 data.</summary>
public sealed record ClaudeImage(string MediaType, string Base64Data);
