using System.ComponentModel;
using CliWrap;
using CliWrap.Buffered;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>Whether the CLI is there and answers <c>--version</c>; remembered briefly so probes stay cheap.</summary>
public sealed class ClaudeCliProbe(IOptions<ClaudeBackendOptions> options, TimeProvider timeProvider)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (ClaudeCliStatus Status, DateTimeOffset At)? _last;

    public async Task<ClaudeCliStatus> CheckAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is { } last && timeProvider.GetUtcNow() - last.At < CacheFor)
            {
                return last.Status;
            }

            var status = await RunAsync(cancellationToken);
            _last = (status, timeProvider.GetUtcNow());
            return status;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ClaudeCliStatus> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            var result = await CliWrap.Cli.Wrap(settings.CliPath)
                .WithArguments("--version")
                .WithEnvironmentVariables(settings.Environment.ToDictionary(e => e.Key, e => (string?)e.Value))
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(timeout.Token);
            return result.ExitCode == 0
                ? new ClaudeCliStatus(true, result.StandardOutput.Trim())
                : new ClaudeCliStatus(false, $"{settings.CliPath} --version exited with {result.ExitCode}: {result.StandardError.Trim()}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ClaudeCliStatus(false, $"{settings.CliPath} --version did not answer within {Timeout.TotalSeconds} s");
        }
        catch (Exception exception) when (exception is Win32Exception or InvalidOperationException)
        {
            return new ClaudeCliStatus(false, $"{settings.CliPath} cannot be started: {exception.Message}");
        }
    }
}

/// <param name="Ready">Whether the CLI answered.</param>
/// <param name="Detail">Its version, or why it is not ready.</param>
public sealed record ClaudeCliStatus(bool Ready, string Detail);
