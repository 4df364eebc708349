using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using ClaudeProxy.ClaudeBackend.StreamJson;
using CliWrap;
using Microsoft.Extensions.Logging;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// One running <c>claude</c> process. As an <see cref="IClaudeCliRun"/> it is a whole turn: its output is everything the
/// process prints and ends when the process does. Disposing it ends the process and its children if they still run.
/// </summary>
internal sealed partial class ClaudeCliProcess : IClaudeCliRun
{
    private const int StandardErrorTailChars = 4_000;

    private readonly Channel<string> _output = Channel.CreateUnbounded<string>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly StringBuilder _standardError = new();
    private readonly CancellationTokenSource _kill = new();
    private readonly Action? _onResult;
    private readonly string? _ownedFile;
    private readonly ClaudeCliLedger _ledger;
    private readonly ClaudeCliMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly long _spawned;
    private int _firstLine;

    /// <param name="onResult">Called when a turn's <c>result</c> line is printed (a warm spare closes its stdin then).</param>
    /// <param name="ownedFile">A file made for this process alone (its system prompt), deleted once it has exited.</param>
    public ClaudeCliProcess(
        Command command,
        ChannelReader<string> input,
        ClaudeCliLedger ledger,
        ClaudeCliMetrics metrics,
        TimeProvider timeProvider,
        ILogger logger,
        Action? onResult = null,
        string? ownedFile = null)
    {
        _onResult = onResult;
        _ownedFile = ownedFile;
        _ledger = ledger;
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
        _spawned = timeProvider.GetTimestamp();
        var piped = command
            .WithStandardInputPipe(PipeSource.Create(async (stdin, cancellationToken) =>
            {
                // Stdin closes when this returns: the CLI then ends after its turn (an open stdin keeps it waiting).
                await foreach (var text in input.ReadAllAsync(cancellationToken))
                {
                    await stdin.WriteAsync(Encoding.UTF8.GetBytes(text + "\n"), cancellationToken);
                    await stdin.FlushAsync(cancellationToken);
                }
            }))
            .WithStandardOutputPipe(PipeTarget.ToDelegate(OnOutputLine, Encoding.UTF8))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(AppendStandardError, Encoding.UTF8));
        Exited = RunAsync(piped);
    }

    public ChannelReader<string> Output => _output.Reader;

    public Task<ClaudeCliExit> Exited { get; }

    /// <summary>The operating system's id of the process, once it has started.</summary>
    public int? ProcessId { get; private set; }

    /// <summary>The process's resident memory, where the platform tells it (Linux <c>/proc</c>); null otherwise.</summary>
    public long? ResidentMemoryBytes()
    {
        if (ProcessId is not { } pid || Exited.IsCompleted)
        {
            return null;
        }

        try
        {
            // "VmRSS:	  163840 kB"
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            var kilobytes = line?["VmRSS:".Length..].Trim().Split(' ')[0];
            return long.TryParse(kilobytes, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value * 1024 : null;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private void OnOutputLine(string line)
    {
        if (Interlocked.Exchange(ref _firstLine, 1) == 0)
        {
            _metrics.FirstOutput(_timeProvider.GetElapsedTime(_spawned));
        }

        _output.Writer.TryWrite(line);
        if (_onResult is not null && CliLine.AsResult(line) is not null)
        {
            _onResult();
        }
    }

    private async Task<ClaudeCliExit> RunAsync(Command command)
    {
        var started = false;
        try
        {
            // Forceful cancellation kills the whole process tree: the CLI spawns git, rg and sh children.
            var execution = await GatewayBoundProcesses.StartAsync(() => command.ExecuteAsync(_kill.Token));
            ProcessId = execution.ProcessId;
            started = true;
            _ledger.Record(execution.ProcessId);
            _metrics.Started();
            var result = await execution;
            if (GatewayBoundProcesses.ExecFailureOf(result.ExitCode, StandardErrorTail()) is { } execFailure)
            {
                // setpriv started, but the CLI it was to become could not: a failed start, as it is unbound.
                throw execFailure;
            }

            LogExited(_logger, result.ExitCode);
            return new ClaudeCliExit(result.ExitCode, StandardErrorTail());
        }
        catch (OperationCanceledException)
        {
            return new ClaudeCliExit(null, StandardErrorTail());
        }
        catch (Exception exception) when (exception is Win32Exception or InvalidOperationException)
        {
            LogStartFailed(_logger, exception);
            _metrics.FailedToStart();
            return new ClaudeCliExit(null, StandardErrorTail(), exception);
        }
        finally
        {
            if (started)
            {
                _ledger.Erase(ProcessId!.Value);
                _metrics.Exited();
            }

            if (_ownedFile is not null)
            {
                TemporaryPaths.TryDelete(_ownedFile);
            }

            _output.Writer.TryComplete();
        }
    }

    private void AppendStandardError(string line)
    {
        lock (_standardError)
        {
            _standardError.AppendLine(line);
            if (_standardError.Length > StandardErrorTailChars)
            {
                _standardError.Remove(0, _standardError.Length - StandardErrorTailChars);
            }
        }
    }

    private string StandardErrorTail()
    {
        lock (_standardError)
        {
            return _standardError.ToString().Trim();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!Exited.IsCompleted)
        {
            await _kill.CancelAsync();
        }

        await Exited;
        _kill.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Claude CLI exited with {ExitCode}")]
    private static partial void LogExited(ILogger logger, int? exitCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude CLI could not start")]
    private static partial void LogStartFailed(ILogger logger, Exception exception);
}
