using System.Threading.Channels;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// The one seam through which the backend gets a CLI process for a turn. Today every turn spawns a process;
/// a pool of warm processes can stand behind the same interface.
/// </summary>
public interface IClaudeCliLauncher
{
    ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken);

    /// <summary>Ends every process it started that still runs (the gateway is shutting down).</summary>
    Task StopAllAsync();
}

/// <summary>A running turn. Disposing it ends the process and its children if they still run.</summary>
public interface IClaudeCliRun : IAsyncDisposable
{
    /// <summary>stdout, one stream-json line per item, in order; completes when the process exits.</summary>
    ChannelReader<string> Output { get; }

    /// <summary>Completes when the process has exited (or could not start).</summary>
    Task<ClaudeCliExit> Exited { get; }
}

/// <summary>How a CLI process ended.</summary>
/// <param name="ExitCode">The exit code, or null when the process never started.</param>
/// <param name="StandardError">The tail of what it wrote on stderr (usage errors, bad session ids).</param>
/// <param name="StartFailure">Why it could not start (e.g. the executable was not found).</param>
public sealed record ClaudeCliExit(int? ExitCode, string StandardError, Exception? StartFailure = null);
