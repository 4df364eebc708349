using Microsoft.Extensions.Hosting;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Ends the CLI processes a gateway that died left behind, starts the warm spares with the gateway, and ends every CLI
/// process as soon as the gateway is told to stop (SIGTERM). It acts on ApplicationStopping, before the web server
/// drains its requests: answers in flight then end with an error at once instead of holding the shutdown until the
/// server's timeout.
/// </summary>
internal sealed class ClaudeCliShutdown(IClaudeCliLauncher launcher, ClaudeCliLedger ledger, IHostApplicationLifetime lifetime) : IHostedService
{
    private CancellationTokenRegistration _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ledger.ReapLeftovers();
        _registration = lifetime.ApplicationStopping.Register(() => launcher.StopAllAsync().Wait(TimeSpan.FromSeconds(10)));
        if (launcher is ClaudeProcessPool pool)
        {
            // The first spares start with the gateway, in the background.
            _ = pool.RefillAsync();
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _registration.DisposeAsync();
        await launcher.StopAllAsync();
    }
}
