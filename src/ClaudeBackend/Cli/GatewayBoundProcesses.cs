using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Ties the CLI processes to the gateway's life, so that not even <c>kill -9</c> of the gateway leaves one running:
/// each is started through util-linux's <c>setpriv --pdeathsig KILL</c>, which has the kernel kill it when its parent
/// goes. Where <c>setpriv</c> is missing or too old (not Linux, a trimmed image) processes start as they are, and the
/// <see cref="ClaudeCliLedger"/> ends leftovers at the next start instead. Only the CLI itself is bound: the kernel
/// clears the signal for its own children (the commands its tools run, when tools are allowed; none by default).
/// </summary>
/// <remarks>
/// Linux sends the parent-death signal when the <em>thread</em> that forked the child ends, not the process. The thread
/// pool retires threads that idle for 20 s, so a child forked on a pool thread would be killed at random, kept
/// conversations first. Every fork therefore happens on one dedicated thread that lives as long as the process.
/// </remarks>
internal static class GatewayBoundProcesses
{
    private static readonly string? SetPriv = OperatingSystem.IsLinux() ? FindSetPriv() : null;
    private static readonly Lazy<BlockingCollection<Action>> Starts = new(StartForkThread);

    /// <summary>Whether processes die with the gateway (<c>setpriv</c> was found).</summary>
    public static bool IsAvailable => SetPriv is not null;

    /// <summary>
    /// The executable and arguments that run <paramref name="executable"/> bound to the gateway. A CLI that cannot be
    /// found is left as it is, so that starting it fails as it would have (the client hears "CLI unavailable").
    /// </summary>
    public static (string Executable, IReadOnlyList<string> Arguments) Bind(string executable, IReadOnlyList<string> arguments) =>
        SetPriv is not null && ExecutablePath.Find(executable) is { } resolved
            ? (SetPriv, ["--pdeathsig", "KILL", "--", resolved, .. arguments])
            : (executable, arguments);

    /// <summary>
    /// Why a bound process never became the CLI: <c>setpriv</c> could not exec it (a script whose interpreter is gone),
    /// exiting 126 or 127 and saying so on stderr, where an unbound start would have thrown. Null for the CLI's own exits.
    /// </summary>
    public static Win32Exception? ExecFailureOf(int exitCode, string standardError) =>
        SetPriv is not null && exitCode is 126 or 127 && standardError.StartsWith("setpriv: failed to execute", StringComparison.Ordinal)
            ? new Win32Exception(standardError)
            : null;

    /// <summary>Runs <paramref name="start"/> (which forks) on the thread that never ends, and returns what it returns.</summary>
    /// <remarks>The caller waits without holding a thread: many turns may start at once.</remarks>
    public static Task<T> StartAsync<T>(Func<T> start)
    {
        if (SetPriv is null)
        {
            return Task.FromResult(start());
        }

        var started = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Starts.Value.Add(() =>
        {
            try
            {
                started.SetResult(start());
            }
            catch (Exception exception)
            {
                started.SetException(exception);
            }
        });
        return started.Task;
    }

    /// <summary>
    /// <c>setpriv</c> if it is there and knows <c>--pdeathsig</c> (util-linux 2.33 and later): an older one refuses the
    /// option, and every CLI start through it would fail.
    /// </summary>
    private static string? FindSetPriv()
    {
        if (ExecutablePath.Find("setpriv") is not { } setpriv || ExecutablePath.Find("true") is not { } noop)
        {
            return null;
        }

        try
        {
            using var probe = Process.Start(new ProcessStartInfo(setpriv, ["--pdeathsig", "KILL", "--", noop]) { RedirectStandardError = true });
            if (probe is null)
            {
                return null;
            }

            _ = probe.StandardError.ReadToEnd();
            return probe.WaitForExit(TimeSpan.FromSeconds(5)) && probe.ExitCode == 0 ? setpriv : null;
        }
        catch (Exception exception) when (exception is Win32Exception or InvalidOperationException)
        {
            return null;
        }
    }

    private static BlockingCollection<Action> StartForkThread()
    {
        var starts = new BlockingCollection<Action>();
        var thread = new Thread(() =>
        {
            foreach (var start in starts.GetConsumingEnumerable())
            {
                start();
            }
        })
        {
            IsBackground = true,
            Name = "claude-cli-fork",
        };
        thread.Start();
        return starts;
    }
}

/// <summary>Where <c>exec</c> would find an executable.</summary>
internal static class ExecutablePath
{
    /// <summary>A path with a <c>/</c> as it is, a bare name by the first match on <c>PATH</c>; null if none is executable.</summary>
    public static string? Find(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return IsExecutable(name) ? Path.GetFullPath(name) : null;
        }

        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool IsExecutable(string path) =>
        File.Exists(path) && !OperatingSystem.IsWindows()
        && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
}
