using System.Collections.Concurrent;
using System.Threading.Channels;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>Spawns <c>claude</c> processes with CliWrap, and knows every one that still runs.</summary>
internal sealed partial class CliWrapClaudeLauncher(
    IOptions<ClaudeBackendOptions> options,
    ClaudeCliMetrics metrics,
    TimeProvider timeProvider,
    ILogger<CliWrapClaudeLauncher> logger) : IClaudeCliLauncher
{
    private readonly ConcurrentDictionary<ClaudeCliProcess, byte> _running = new();

    /// <summary>Starts a process for one turn: the prompt goes to stdin, which then closes, so the CLI ends after the turn.</summary>
    public ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var input = Channel.CreateUnbounded<string>();
        input.Writer.TryWrite(invocation.InputLine);
        input.Writer.TryComplete();
        return ValueTask.FromResult<IClaudeCliRun>(Start(invocation, input.Reader));
    }

    /// <summary>
    /// Starts a process whose stdin is fed from <paramref name="input"/>: each item is written and flushed as it comes,
    /// and stdin closes when <paramref name="input"/> completes (the CLI then ends after its turn). Until the first item
    /// the process loads and waits, which is what a warm spare is.
    /// </summary>
    public ClaudeCliProcess Start(ClaudeCliInvocation invocation, ChannelReader<string> input)
    {
        LogStarted(logger, options.Value.CliPath, invocation.CliModel, invocation.SessionMode);
        var process = new ClaudeCliProcess(Command(invocation), input, metrics, timeProvider, logger);
        _running.TryAdd(process, 0);
        _ = process.Exited.ContinueWith(_ => _running.TryRemove(process, out byte _), TaskScheduler.Default);
        return process;
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
}
