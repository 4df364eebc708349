using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The backend's start and stop. At start: start connecting to the shared Redis, end the CLI processes a gateway that
/// died left behind, apply the conversation retention (and clear leftovers) before any warm process takes a folder,
/// start the warm spares, and keep applying the retention in the background. At stop: end every CLI process as soon as the gateway is told to stop (SIGTERM), on
/// ApplicationStopping, before the web server drains its requests: answers in flight then end with an error at once
/// instead of holding the shutdown until the server's timeout.
/// </summary>
internal sealed partial class ClaudeBackendLifetime(
    IClaudeCliLauncher launcher,
    ClaudeCliLedger ledger,
    ConversationRetention retention,
    SharedRedis redis,
    IHostApplicationLifetime lifetime,
    ILogger<ClaudeBackendLifetime> logger) : IHostedService
{
    // Never disposed: the host may stop a service after disposing it, and a source without timers holds nothing.
    private readonly CancellationTokenSource _stopping = new();
    private CancellationTokenRegistration _registration;
    private Task _retention = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // First, while the rest of the start goes on: Redis's users never wait for the connection, they go without it.
        _ = redis.ConnectAsync();
        ledger.ReapLeftovers();
        try
        {
            await retention.RemoveLeftoversAsync(cancellationToken);
            await retention.SweepAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogRetentionFailed(logger, exception);
        }

        _registration = lifetime.ApplicationStopping.Register(() => launcher.StopAllAsync().Wait(TimeSpan.FromSeconds(10)));
        // The first spares start with the gateway, in the background.
        _ = launcher.WarmUpAsync();

        _retention = retention.RunAsync(_stopping.Token);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _registration.DisposeAsync();
        await launcher.StopAllAsync();
        await _retention;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Applying the conversation retention at start failed; it is tried again at the next interval")]
    private static partial void LogRetentionFailed(ILogger logger, Exception exception);
}
