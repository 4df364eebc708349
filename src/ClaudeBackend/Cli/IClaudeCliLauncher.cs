using System.Threading.Channels;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// The one seam through which the backend gets a CLI process for a turn: a process spawned for it, a warm spare, or
/// the process a kept conversation keeps between its turns (<see cref="ClaudeProcessPool"/>).
/// </summary>
public interface IClaudeCliLauncher
{
    ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken);

    /// <summary>Starts what it keeps ready ahead of turns (warm spares), in the background; nothing by default.</summary>
    Task WarmUpAsync() => Task.CompletedTask;

    /// <summary>Ends every process it started that still runs (the gateway is shutting down).</summary>
    Task StopAllAsync();

    /// <summary>
    /// Ends the process kept up for <paramref name="sessionId"/> between turns, if there is one, and completes once it has
    /// exited (with its session written out). For a session no turn is using: the caller holds its conversation's lock.
    /// </summary>
    Task EndSessionAsync(Guid sessionId) => Task.CompletedTask;
}

/// <summary>
/// A running turn. Disposing it before the turn is over stops the turn: a process of its own is killed with its
/// children; a kept process is interrupted, and killed only if it does not stop.
/// </summary>
public interface IClaudeCliRun : IAsyncDisposable
{
    /// <summary>stdout, one stream-json line per item, in order; completes when the run ends.</summary>
    ChannelReader<string> Output { get; }

    /// <summary>
    /// Completes when the run has ended: the process exited (or could not start), or, on a process kept for the next
    /// turn, the turn printed its result (exit code 0; the process goes on).
    /// </summary>
    Task<ClaudeCliExit> Exited { get; }

    /// <summary>The stored session the turn runs in, when it keeps one: a warm process may bring its own.</summary>
    ClaudeCliSession? Session => null;
}

/// <summary>A stored Claude session: its id, and the working directory the CLI keeps it under (needed to resume it).</summary>
public sealed record ClaudeCliSession(Guid Id, string WorkingDirectory);

/// <summary>How a CLI process ended.</summary>
/// <param name="ExitCode">The exit code, or null when the process never started.</param>
/// <param name="StandardError">The tail of what it wrote on stderr (usage errors, bad session ids).</param>
/// <param name="StartFailure">Why it could not start (e.g. the executable was not found).</param>
public sealed record ClaudeCliExit(int? ExitCode, string StandardError, Exception? StartFailure = null);
