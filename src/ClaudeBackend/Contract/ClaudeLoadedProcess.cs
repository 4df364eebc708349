namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// A CLI process that waits, loaded, for a turn: a warm spare, or a conversation's kept process between its turns. What
/// Ollama's <c>/api/ps</c> shows as a loaded model.
/// </summary>
/// <param name="CliModel">The <c>--model</c> it runs.</param>
/// <param name="ResidentBytes">Its resident memory, where the platform tells it.</param>
/// <param name="ExpiresAt">When it is ended if no turn comes; null for a spare, which waits until it is needed.</param>
public sealed record ClaudeLoadedProcess(string CliModel, long? ResidentBytes, DateTimeOffset? ExpiresAt);

/// <summary>The processes that wait, loaded, for turns now.</summary>
public interface IClaudeLoadedProcesses
{
    IReadOnlyList<ClaudeLoadedProcess> Loaded();
}
