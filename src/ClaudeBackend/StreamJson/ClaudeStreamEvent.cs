using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.StreamJson;

/// <summary>What a turn's stream-json output means to a client, one event at a time.</summary>
public abstract record ClaudeStreamEvent;

/// <summary>Answer text, in the order the model produced it.</summary>
public sealed record TextDelta(string Text) : ClaudeStreamEvent;

/// <summary>Thinking text, kept apart from the answer.</summary>
public sealed record ThinkingDelta(string Text) : ClaudeStreamEvent;

/// <summary>The turn ended well; the CLI's real usage and timings.</summary>
public sealed record TurnCompleted(ClaudeTurnResult Result) : ClaudeStreamEvent;

/// <summary>The turn ended in an error; nothing follows.</summary>
public sealed record TurnFailed(ClaudeBackendError Error) : ClaudeStreamEvent;
