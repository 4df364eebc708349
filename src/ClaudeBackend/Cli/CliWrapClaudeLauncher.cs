using System.Collections.Concurrent;
using System.Threading.Channels;
using CliWrap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Spawns <c>claude</c> processes with CliWrap, bound to the gateway's life (<see cref="GatewayBoundProcesses"/>) and
/// recorded in the <see cref="ClaudeCliLedger"/>, and knows every one that still runs.
/// </summary>
internal sealed partial class CliWrapClaudeLauncher(
    IOptions<ClaudeBackendOptions> options,
    ClaudeCliEnvironment environment,
    ClaudeCliLedger ledger,
    ClaudeCliMetrics metrics,
    TimeProvider timeProvider,
    ILogger<CliWrapClaudeLauncher> logger) : IClaudeCliLauncher
{
    private readonly ConcurrentDictionary<ClaudeCliProcess, byte> _running = new();

    /// <summary>Starts a process for one turn: the prompt goes to stdin, which then closes, so the CLI ends after the turn.</summary>
    public ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var input = Channel.CreateUnbounded<string>();
        List<string> lines = [.. invocation.Initialization is { } initialization ? [initialization] : Array.Empty<string>(), .. invocation.TurnInput(default)];
        foreach (var line in lines)
        {
            input.Writer.TryWrite(line);
        }

        if (lines.Count == 1)
        {
            input.Writer.TryComplete();
            return ValueTask.FromResult<IClaudeCliRun>(Start(invocation, input.Reader));
        }

        // Control requests ahead of the prompt: stdin closes once the result is out, as a warm spare's does (a CLI given
        // requests, a prompt and EOF at once can exit without answering).
        return ValueTask.FromResult<IClaudeCliRun>(Start(invocation, input.Reader, onResult: () => input.Writer.TryComplete()));
    }

    /// <summary>
    /// Starts a process whose stdin is fed from <paramref name="input"/>: each item is written and flushed as it comes,
    /// and stdin closes when <paramref name="input"/> completes (the CLI then ends after its turn). Until the first item
    /// the process loads and waits, which is what a warm spare is.
    /// </summary>
    /// <param name="onResult">Called when the process prints a turn's <c>result</c> line.</param>
    public ClaudeCliProcess Start(ClaudeCliInvocation invocation, ChannelReader<string> input, Action? onResult = null)
    {
        LogStarted(logger, options.Value.CliPath, invocation.CliModel, invocation.SessionMode);
        // A conversation's folder is made when its first process starts there (a warm process may bring its own).
        Directory.CreateDirectory(invocation.WorkingDirectory);
        // Prompts stay out of argv, so out of the process list: the system prompt goes in a file the process owns.
        var systemPromptFile = invocation.SystemPrompt is { Length: > 0 } systemPrompt ? WriteSystemPrompt(systemPrompt) : null;
        var process = new ClaudeCliProcess(Command(invocation, systemPromptFile), input, ledger, metrics, timeProvider, logger, onResult, ownedFile: systemPromptFile);
        _running.TryAdd(process, 0);
        _ = process.Exited.ContinueWith(_ => _running.TryRemove(process, out byte _), TaskScheduler.Default);
        return process;
    }

    private static string WriteSystemPrompt(string systemPrompt)
    {
        var file = Path.Combine(Path.GetTempPath(), $"{TemporaryPaths.Prefix}system-{Guid.NewGuid():N}.txt");
        File.WriteAllText(file, systemPrompt);
        return file;
    }

    private Command Command(ClaudeCliInvocation invocation, string? systemPromptFile)
    {
        var (executable, arguments) = GatewayBoundProcesses.Bind(options.Value.CliPath, invocation.ToArguments(systemPromptFile));
        return CliWrap.Cli.Wrap(executable)
            .WithArguments(arguments)
            .WithWorkingDirectory(invocation.WorkingDirectory)
            .WithEnvironmentVariables(environment.Variables)
            .WithValidation(CommandResultValidation.None);
    }

    public Task StopAllAsync() => Task.WhenAll(_running.Keys.Select(run => run.DisposeAsync().AsTask()));

    [LoggerMessage(Level = LogLevel.Debug, Message = "Starting {CliPath} --model {Model} ({SessionMode})")]
    private static partial void LogStarted(ILogger logger, string cliPath, string model, ClaudeSessionMode sessionMode);
}
