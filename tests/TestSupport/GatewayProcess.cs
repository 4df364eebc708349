using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ClaudeProxy.TestSupport;

/// <summary>The gateway as its own process on 127.0.0.1 and a free port, configured through its environment.</summary>
public sealed class GatewayProcess : IDisposable
{
    private GatewayProcess(Process process, int port)
    {
        Process = process;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(10) };
    }

    public Process Process { get; }

    public HttpClient Client { get; }

    /// <summary>Starts <paramref name="gatewayDll"/> and waits until it answers <c>/</c>.</summary>
    /// <param name="port">The port to listen on (a process coming back where it was); a free one by default.</param>
    public static async Task<GatewayProcess> StartAsync(string gatewayDll, IReadOnlyDictionary<string, string> environment, int? port = null)
    {
        port ??= FreeLoopbackPort();
        var process = QuietProcess.Start(
            "dotnet", [gatewayDll], new Dictionary<string, string>(environment) { ["PORT"] = port.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var gateway = new GatewayProcess(process, port.Value);
        for (var attempt = 0; attempt < 300; attempt++)
        {
            try
            {
                using var response = await gateway.Client.GetAsync("/");
                if (response.IsSuccessStatusCode)
                {
                    return gateway;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        gateway.Dispose();
        throw new InvalidOperationException("The gateway did not start.");
    }

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        Client.Dispose();
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
        }

        Process.Dispose();
    }
}
