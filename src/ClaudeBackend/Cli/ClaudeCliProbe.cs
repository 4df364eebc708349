using System.ComponentModel;
using CliWrap;
using CliWrap.Buffered;
using ClaudeProxy.ClaudeBackend.Contract;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Whether the CLI can serve: it answers <c>--version</c> (remembered briefly so probes stay cheap) and its last turn
/// did not fail to authenticate (a lost login shows here until a turn succeeds again).
/// </summary>
public sealed class ClaudeCliProbe(IOptions<ClaudeBackendOptions> options, ClaudeCliEnvironment environment, TimeProvider timeProvider)
{
    private volatile string? _authenticationFailure;

    /// <summary>Learns from a finished turn: an authentication error marks the CLI not ready, a success clears it.</summary>
    public void ReportTurn(ClaudeBackendError? error)
    {
        if (error is null)
        {
            _authenticationFailure = null;
        }
        else if (error.Kind == ClaudeErrorKind.Authentication)
        {
            _authenticationFailure = error.Message;
        }
    }

    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (ClaudeCliStatus Status, DateTimeOffset At)? _last;

    public async Task<ClaudeCliStatus> CheckAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is not { } last || timeProvider.GetUtcNow() - last.At >= CacheFor)
            {
                _last = last = (await RunAsync(cancellationToken), timeProvider.GetUtcNow());
            }

            return last.Status.Ready && _authenticationFailure is { } failure
                ? new ClaudeCliStatus(false, $"{last.Status.Detail}; the last turn failed to authenticate: {failure}")
                : last.Status;
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
                .WithEnvironmentVariables(environment.Variables)
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
