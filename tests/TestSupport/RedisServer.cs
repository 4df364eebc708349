using System.Diagnostics;
using System.Net.Sockets;

namespace ClaudeProxy.TestSupport;

/// <summary>A real <c>redis-server</c> (Debian's package) on 127.0.0.1 and a free port, nothing saved to disk.</summary>
public sealed class RedisServer : IDisposable
{
    private const string Executable = "/usr/bin/redis-server";

    private readonly Process _process;

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Whether the server is installed (<c>.ci/run</c> installs it).</summary>
    private static bool IsInstalled => File.Exists(Executable);

    /// <summary>Starts a server for a test, which is skipped where none is installed; in CI that is a failure.</summary>
    public static async Task<RedisServer> StartOrSkipAsync()
    {
        if (!IsInstalled)
        {
            const string Missing = "Needs redis-server (.ci/run installs the Debian package).";
            Xunit.Assert.Skip(RepoPaths.IsCi ? throw new InvalidOperationException(Missing) : Missing);
        }

        return await StartAsync();
    }

    /// <summary>
    /// Makes the server hold every client's commands for <paramref name="duration"/> (<c>CLIENT PAUSE</c>): connected,
    /// and silent, as a Redis that stalls is.
    /// </summary>
    public async Task PauseClientsAsync(TimeSpan duration)
    {
        var milliseconds = ((long)duration.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (await CommandAsync($"CLIENT PAUSE {milliseconds}") != "+OK")
        {
            throw new InvalidOperationException("redis-server did not pause its clients.");
        }
    }

    /// <summary>Closes every subscriber's connection (<c>CLIENT KILL TYPE pubsub</c>), as a network that drops one does.</summary>
    public async Task DropSubscribersAsync()
    {
        if (await CommandAsync("CLIENT KILL TYPE pubsub") is not [':', ..])
        {
            throw new InvalidOperationException("redis-server did not drop its subscribers.");
        }
    }

    /// <summary>The items of every list whose key matches <paramref name="pattern"/>, read on a connection of its own.</summary>
    public async Task<IReadOnlyList<IReadOnlyList<byte[]>>> ListsAsync(string pattern)
    {
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(Configuration);
        var database = redis.GetDatabase();
        List<IReadOnlyList<byte[]>> lists = [];
        await foreach (var key in redis.GetServer(redis.GetEndPoints()[0]).KeysAsync(pattern: pattern))
        {
            if (await database.KeyTypeAsync(key) == StackExchange.Redis.RedisType.List)
            {
                lists.Add([.. (await database.ListRangeAsync(key)).Select(item => (byte[])item!)]);
            }
        }

        return lists;
    }

    /// <summary>Sends one inline command on a connection of its own; its reply's first line.</summary>
    private async Task<string?> CommandAsync(string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port);
        using var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"));
        return await new StreamReader(stream, System.Text.Encoding.ASCII).ReadLineAsync();
    }

    /// <summary>What <c>CLAUDEPROXY_REDIS</c> takes.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var port = GatewayProcess.FreeLoopbackPort();
        var process = QuietProcess.Start(
            Executable, ["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]);
        var server = new RedisServer(process, port);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return server;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        server.Dispose();
        throw new InvalidOperationException("redis-server did not listen.");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }

        _process.Dispose();
    }
}
