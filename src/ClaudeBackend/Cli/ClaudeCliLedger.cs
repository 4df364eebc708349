using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// A file per running CLI process under the data folder (<c>processes/&lt;pid&gt;</c>), so that a gateway that starts
/// after one that died without ending its processes (where the parent-death signal is unavailable) ends what that one
/// left behind. Each file names the process and the gateway by pid and start time, so a reused pid is never mistaken
/// for a leftover, and the processes of another gateway that shares the folder and still runs are left alone.
/// </summary>
internal sealed partial class ClaudeCliLedger(IOptions<ClaudeBackendOptions> options, ILogger<ClaudeCliLedger> logger)
{
    private static readonly Lazy<ProcessIdentity?> Gateway = new(() => ProcessIdentity.Of(Environment.ProcessId));

    private readonly string _folder = Path.Combine(options.Value.DataDirectory!, "processes");

    /// <summary>Records a CLI process the gateway has just started.</summary>
    public void Record(int pid)
    {
        if (Gateway.Value is not { } gateway || ProcessIdentity.Of(pid) is not { } process)
        {
            return;
        }

        try
        {
            Directory.CreateDirectory(_folder);
            File.WriteAllText(PathOf(pid), $"{process.StartTicks} {gateway.Pid} {gateway.StartTicks}");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogRecordFailed(logger, pid, exception);
        }
    }

    /// <summary>Forgets a CLI process that has exited.</summary>
    public void Erase(int pid) => TemporaryPaths.TryDelete(PathOf(pid));

    /// <summary>Kills the recorded CLI processes of gateways that no longer run; returns how many were still running.</summary>
    /// <remarks>Never throws for what it finds on disk: a ledger it cannot read must not keep the gateway from starting.</remarks>
    public int ReapLeftovers()
    {
        var reaped = 0;
        try
        {
            if (!Directory.Exists(_folder))
            {
                return 0;
            }

            foreach (var file in Directory.EnumerateFiles(_folder))
            {
                if (TryReap(file) is { } pid)
                {
                    reaped++;
                    LogReaped(logger, pid.Process, pid.Gateway);
                }
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogReapFailed(logger, _folder, exception);
        }

        return reaped;
    }

    /// <summary>Ends the process a ledger file names if its gateway is gone; the pids if it was still running.</summary>
    private static (int Process, int Gateway)? TryReap(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Erased meanwhile by the gateway that owns it, or not ours to read.
            return null;
        }

        if (!int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || Parse(text) is not { } entry)
        {
            TemporaryPaths.TryDelete(file);
            return null;
        }

        if (entry.Owner.IsRunning())
        {
            // A gateway that is still up (this one, or another one on the same folder) minds its own processes.
            return null;
        }

        var killed = new ProcessIdentity(pid, entry.StartTicks).IsRunning() && TryKill(pid);
        TemporaryPaths.TryDelete(file);
        return killed ? (pid, entry.Owner.Pid) : null;
    }

    private string PathOf(int pid) => Path.Combine(_folder, pid.ToString(CultureInfo.InvariantCulture));

    private static (long StartTicks, ProcessIdentity Owner)? Parse(string text) =>
        text.Split(' ') is [var start, var ownerPid, var ownerStart]
        && long.TryParse(start, NumberStyles.None, CultureInfo.InvariantCulture, out var startTicks)
        && int.TryParse(ownerPid, NumberStyles.None, CultureInfo.InvariantCulture, out var owner)
        && long.TryParse(ownerStart, NumberStyles.None, CultureInfo.InvariantCulture, out var ownerTicks)
            ? (startTicks, new ProcessIdentity(owner, ownerTicks))
            : null;

    private static bool TryKill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill(entireProcessTree: true);
            return true;
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidOperationException or AggregateException or System.ComponentModel.Win32Exception)
        {
            // Gone meanwhile, or not ours to kill.
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ended Claude CLI process {Pid}, left running by gateway process {GatewayPid} that is gone")]
    private static partial void LogReaped(ILogger logger, int pid, int gatewayPid);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the Claude CLI process ledger in {Folder}; processes a gone gateway left running are not ended")]
    private static partial void LogReapFailed(ILogger logger, string folder, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record Claude CLI process {Pid}; if the gateway dies it may outlive it")]
    private static partial void LogRecordFailed(ILogger logger, int pid, Exception exception);
}

/// <summary>A process as the kernel names it for good: its pid and its start time (clock ticks since boot, Linux <c>/proc</c>).</summary>
internal readonly record struct ProcessIdentity(int Pid, long StartTicks)
{
    /// <summary>The running process with that pid, or null (gone, or no <c>/proc</c> on this platform).</summary>
    public static ProcessIdentity? Of(int pid)
    {
        try
        {
            // "pid (comm) state ppid …": the comm may hold spaces and parentheses, so count fields after the last ')'.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // Field 22 of stat (starttime) is the 20th after the comm.
            return fields.Length > 19 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                ? new ProcessIdentity(pid, ticks)
                : null;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public bool IsRunning() => Of(Pid) == this;
}
