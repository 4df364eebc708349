using System.Collections.Concurrent;
using System.ComponentModel;
using System.Text;
using System.Threading.Channels;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>Spawns one <c>claude</c> process per turn with CliWrap.</summary>
internal sealed partial class CliWrapClaudeLauncher(
    IOptions<ClaudeBackendOptions> options,
    ClaudeCliMetrics metrics,
    TimeProvider timeProvider,
    ILogger<CliWrapClaudeLauncher> logger) : IClaudeCliLauncher
{
    private const int StandardErrorTailChars = 4_000;
    private readonly ConcurrentDictionary<CliWrapClaudeRun, byte> _running = new();

    public ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var run = Start(Command(invocation), Task.FromResult(invocation.InputLine));
        LogStarted(logger, options.Value.CliPath, invocation.CliModel, invocation.SessionMode);
        return ValueTask.FromResult<IClaudeCliRun>(run);
    }

    /// <summary>
    /// Starts a process for a turn not known yet: it loads and then waits on stdin, which gets
    /// <paramref name="input"/> once that completes (and is closed after it).
    /// </summary>
    public IClaudeCliRun StartIdle(ClaudeCliInvocation invocation, Task<string> input)
    {
        var command = Command(invocation);
        LogStarted(logger, options.Value.CliPath, invocation.CliModel, invocation.SessionMode);
        return Start(command, input);
    }

    private Command Command(ClaudeCliInvocation invocation)
    {
        var settings = options.Value;
        return CliWrap.Cli.Wrap(settings.CliPath)
            .WithArguments(invocation.ToArguments())
            .WithWorkingDirectory(invocation.WorkingDirectory)
            .WithEnvironmentVariables(CliEnvironment(settings))
            .WithValidation(CommandResultValidation.None);
    }

    private CliWrapClaudeRun Start(Command command, Task<string> input)
    {
        var run = new CliWrapClaudeRun(command, input, metrics, timeProvider, logger);
        _running.TryAdd(run, 0);
        _ = run.Exited.ContinueWith(_ => _running.TryRemove(run, out byte _), TaskScheduler.Default);
        return run;
    }

    public Task StopAllAsync() => Task.WhenAll(_running.Keys.Select(run => run.DisposeAsync().AsTask()));

    private static Dictionary<string, string?> CliEnvironment(ClaudeBackendOptions settings)
    {
        // Without these the CLI also calls Anthropic's bootstrap, telemetry and update endpoints on every start.
        var environment = new Dictionary<string, string?>
        {
            ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
            ["DISABLE_AUTOUPDATER"] = "1",
            ["DISABLE_TELEMETRY"] = "1",
            ["DISABLE_ERROR_REPORTING"] = "1",
            ["CLAUDE_CODE_MAX_RETRIES"] = settings.MaxRetries.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (name, value) in settings.Environment)
        {
            environment[name] = value;
        }

        return environment;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Starting {CliPath} --model {Model} ({SessionMode})")]
    private static partial void LogStarted(ILogger logger, string cliPath, string model, ClaudeSessionMode sessionMode);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Claude CLI exited with {ExitCode}")]
    private static partial void LogExited(ILogger logger, int? exitCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude CLI could not start")]
    private static partial void LogStartFailed(ILogger logger, Exception exception);

    private sealed class CliWrapClaudeRun : IClaudeCliRun
    {
        private readonly Channel<string> _output = Channel.CreateUnbounded<string>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        private readonly StringBuilder _standardError = new();
        private readonly CancellationTokenSource _kill = new();
        private readonly ClaudeCliMetrics _metrics;
        private readonly ILogger _logger;
        private readonly TimeProvider _timeProvider;
        private readonly long _spawned;
        private int _firstLine;

        public CliWrapClaudeRun(Command command, Task<string> input, ClaudeCliMetrics metrics, TimeProvider timeProvider, ILogger logger)
        {
            _metrics = metrics;
            _timeProvider = timeProvider;
            _logger = logger;
            _spawned = timeProvider.GetTimestamp();
            var piped = command
                .WithStandardInputPipe(PipeSource.Create(async (stdin, cancellationToken) =>
                {
                    // Stdin closes when this returns: the CLI then ends after the turn (an open stdin delays it 3 s).
                    var text = await input.WaitAsync(cancellationToken);
                    await stdin.WriteAsync(Encoding.UTF8.GetBytes(text + "\n"), cancellationToken);
                }))
                .WithStandardOutputPipe(PipeTarget.ToDelegate(OnOutputLine, Encoding.UTF8))
                .WithStandardErrorPipe(PipeTarget.ToDelegate(AppendStandardError, Encoding.UTF8));
            Exited = RunAsync(piped);
        }

        public ChannelReader<string> Output => _output.Reader;

        private void OnOutputLine(string line)
        {
            if (Interlocked.Exchange(ref _firstLine, 1) == 0)
            {
                _metrics.FirstOutput(_timeProvider.GetElapsedTime(_spawned));
            }

            _output.Writer.TryWrite(line);
        }

        public Task<ClaudeCliExit> Exited { get; }

        private async Task<ClaudeCliExit> RunAsync(Command command)
        {
            var started = false;
            try
            {
                // Forceful cancellation kills the whole process tree: the CLI spawns git, rg and sh children.
                var execution = command.ExecuteAsync(_kill.Token);
                started = true;
                _metrics.Started();
                var result = await execution;
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
                    _metrics.Exited();
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
    }
}
