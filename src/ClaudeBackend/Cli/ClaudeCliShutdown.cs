using Microsoft.Extensions.Hosting;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Ends every CLI process when the gateway stops (SIGTERM). Registered after the web server, so it runs before the
/// server drains: answers in flight end with an error at once instead of holding the shutdown.
/// </summary>
internal sealed class ClaudeCliShutdown(IClaudeCliLauncher launcher) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => launcher.StopAllAsync();
}
