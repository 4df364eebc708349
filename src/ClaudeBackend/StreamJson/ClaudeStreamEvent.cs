using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.StreamJson;

/// <summary>
/// What a turn means to a client, one event at a time: decoded once from the CLI's stream-json lines, read by the
/// dialects as they are. Where a turn crosses a socket, each event is one JSON line of the backend's contract, its kind
/// in <c>type</c>.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(TextDelta), "text")]
[JsonDerivedType(typeof(ThinkingDelta), "thinking")]
[JsonDerivedType(typeof(ToolCallRequested), "tool_call")]
[JsonDerivedType(typeof(TurnCompleted), "completed")]
[JsonDerivedType(typeof(TurnFailed), "failed")]
[JsonDerivedType(typeof(RateLimitReported), "rate_limit")]
public abstract record ClaudeStreamEvent;

/// <summary>Answer text, in the order the model produced it.</summary>
public sealed record TextDelta(string Text) : ClaudeStreamEvent;

/// <summary>Thinking text, kept apart from the answer.</summary>
public sealed record ThinkingDelta(string Text) : ClaudeStreamEvent;

/// <summary>
/// The model calls one of the client's functions; <paramref name="Index"/> is its place among the calls of its round.
/// The turn then completes with every call of the round (<see cref="ClaudeTurnResult.ToolCalls"/>) and waits for their
/// results, which the client's next request brings.
/// </summary>
public sealed record ToolCallRequested(ClaudeToolCall Call, int Index) : ClaudeStreamEvent;

/// <summary>The turn ended well, or paused for the client's function results; the CLI's real usage and timings.</summary>
public sealed record TurnCompleted(ClaudeTurnResult Result) : ClaudeStreamEvent;

/// <summary>The turn ended in an error; nothing follows.</summary>
public sealed record TurnFailed(ClaudeBackendError Error) : ClaudeStreamEvent;

/// <summary>The login's rate-limit state after one of the turn's API calls; a subscription login reports it, an API key not.</summary>
public sealed record RateLimitReported(ClaudeRateLimit RateLimit) : ClaudeStreamEvent;
