using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// What a turn sets on its process before its prompt, by control requests on stdin: the effort level, thinking off,
/// and the output-token limit. A process keeps them for its later turns (observed with 2.1.197,
/// <c>tests/Fixtures/turn_settings</c>), so a turn sends only what differs from what its process has.
/// </summary>
public readonly record struct ClaudeCliSettings(string? Effort, bool ThinkingOff, int? MaxOutputTokens)
{
    public static ClaudeCliSettings Of(ClaudeTurnOptions? options) =>
        new(options?.Effort, options?.Thinking == false, options?.MaxOutputTokens);

    /// <summary>The control requests that take a process from <paramref name="applied"/> to these settings.</summary>
    public IEnumerable<string> ControlLines(ClaudeCliSettings applied)
    {
        if (Effort != applied.Effort || MaxOutputTokens != applied.MaxOutputTokens)
        {
            yield return CliControlRequest.ApplyFlagSettings(Effort, MaxOutputTokens);
        }

        if (ThinkingOff != applied.ThinkingOff)
        {
            yield return CliControlRequest.SetMaxThinkingTokens(ThinkingOff ? 0 : null);
        }
    }
}
