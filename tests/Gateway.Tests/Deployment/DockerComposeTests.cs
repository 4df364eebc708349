using System.Diagnostics;
using System.Text.Json;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.Deployment;

/// <summary>
/// docker-compose.yml cannot be run here (no Docker engine), so it is validated by the compose client and its wiring
/// is checked: who talks to whom, on which ports, with which mounts.
/// </summary>
public sealed class DockerComposeTests
{
    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["HOME"] = "/home/someone";
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, output + error);
    }

    private static void RequireTools(params string[] tools)
    {
        var missing = tools.Where(t => !File.Exists($"/usr/bin/{t}")).ToList();
        if (missing.Count == 0)
        {
            return;
        }

        var message = $"Needs {string.Join(", ", missing)} (.ci/run installs them).";
        if (RepoPaths.IsCi)
        {
            throw new InvalidOperationException(message);
        }

        Assert.Skip(message);
    }

    /// <summary>The compose file as the compose client resolves it, read as JSON (through the YAML library it ships with).</summary>
    private static async Task<JsonElement> ResolvedComposeAsync(params string[] profiles)
    {
        var (exitCode, output) = await RunAsync("/usr/bin/docker-compose", [.. profiles.SelectMany(p => (string[])["--profile", p]), "-f", "docker-compose.yml", "config"]);
        Assert.True(exitCode == 0, output);
        var resolved = Path.GetTempFileName();
        await File.WriteAllTextAsync(resolved, output, TestContext.Current.CancellationToken);
        var (jsonExit, json) = await RunAsync("/usr/bin/python3", "-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", resolved);
        Assert.True(jsonExit == 0, json);
        return JsonDocument.Parse(json).RootElement;
    }

    private static string Env(JsonElement service, string name) => service.GetProperty("environment").GetProperty(name).GetString()!;

    [Fact]
    public async Task Open_webui_talks_to_claudeproxy_which_talks_to_ollama()
    {
        RequireTools("docker-compose", "python3");

        var services = (await ResolvedComposeAsync()).GetProperty("services");

        // What `docker compose up` starts: the services of no profile.
        Assert.Equal(["claudeproxy", "ollama", "open-webui", "prometheus"], services.EnumerateObject().Where(s => !s.Value.TryGetProperty("profiles", out _)).Select(s => s.Name).Order());
        var proxy = services.GetProperty("claudeproxy");
        Assert.Equal($"http://claudeproxy:{Env(proxy, "PORT")}", Env(services.GetProperty("open-webui"), "OLLAMA_BASE_URL"));
        Assert.Equal("http://ollama:11434", Env(proxy, "OLLAMA_URL"));
        Assert.Equal("0.0.0.0", Env(proxy, "HOST"));
        Assert.Contains(proxy.GetProperty("volumes").EnumerateArray(), v => v.GetString() == "/home/someone/.claude:/claude-login:ro");
        Assert.Contains(services.GetProperty("prometheus").GetProperty("volumes").EnumerateArray(),
            v => v.GetString()!.EndsWith("/config/prometheus.yml:/etc/prometheus/prometheus.yml:ro", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_workers_profile_puts_a_front_before_two_workers_that_publish_nothing()
    {
        RequireTools("docker-compose", "python3");

        var services = (await ResolvedComposeAsync("workers")).GetProperty("services");

        var front = services.GetProperty("claudeproxy-front");
        Assert.Equal("http://claude-worker-a:22434,http://claude-worker-b:22434", Env(front, "CLAUDEPROXY_WORKERS"));
        Assert.Equal("redis:6379", Env(front, "CLAUDEPROXY_REDIS"));
        Assert.True(front.GetProperty("networks").TryGetProperty("claude-store", out _));
        Assert.All((string[])["claude-worker-a", "claude-worker-b"], name =>
        {
            var worker = services.GetProperty(name);
            Assert.Equal("worker", Env(worker, "CLAUDEPROXY_ROLE"));
            Assert.Equal("redis:6379", Env(worker, "CLAUDEPROXY_REDIS"));
            Assert.Equal("22434", Env(worker, "PORT"));
            Assert.False(worker.TryGetProperty("ports", out _));
            Assert.Contains(worker.GetProperty("volumes").EnumerateArray(), v => v.GetString() == "/home/someone/.claude:/claude-login:ro");
        });
        Assert.StartsWith("127.0.0.1:22444:22434", Assert.Single(front.GetProperty("ports").EnumerateArray()).GetString(), StringComparison.Ordinal);
        Assert.Equal(["workers"], front.GetProperty("profiles").EnumerateArray().Select(p => p.GetString()));
        Assert.False(services.GetProperty("redis").TryGetProperty("ports", out _));
        Assert.Equal(["claude-store"], services.GetProperty("redis").GetProperty("networks").EnumerateObject().Select(n => n.Name));
        Assert.False(services.GetProperty("open-webui").TryGetProperty("networks", out var webuiNetworks) && webuiNetworks.TryGetProperty("claude-store", out _));
        Assert.All((string[])["claudeproxy-front", "claude-worker-a", "claude-worker-b"], name => Assert.True(services.GetProperty(name).GetProperty("environment").TryGetProperty("CLAUDEPROXY_WORKER_KEY", out _)));
    }

    [Fact]
    public async Task Every_published_port_is_on_loopback()
    {
        RequireTools("docker-compose", "python3");

        var services = (await ResolvedComposeAsync()).GetProperty("services");

        var ports = services.EnumerateObject().SelectMany(s => s.Value.TryGetProperty("ports", out var p) ? p.EnumerateArray() : []).Select(p => p.GetString()!).ToList();
        Assert.Equal(5, ports.Count);
        Assert.All(ports, port => Assert.StartsWith("127.0.0.1:", port, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Prometheus_scrapes_claudeproxy_with_a_valid_configuration()
    {
        RequireTools("promtool");

        var (exitCode, output) = await RunAsync("/usr/bin/promtool", "check", "config", "config/prometheus.yml");

        Assert.True(exitCode == 0, output);
        Assert.Contains("claudeproxy:22434", await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "config", "prometheus.yml"), TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_image_installs_the_cli_and_copies_only_the_login_into_a_writable_home()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "Dockerfile"), TestContext.Current.CancellationToken);
        var entrypoint = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "config", "docker-entrypoint.sh"), TestContext.Current.CancellationToken);

        Assert.Contains("npm install -g @anthropic-ai/claude-code", dockerfile, StringComparison.Ordinal);
        Assert.Contains("USER app", dockerfile, StringComparison.Ordinal);
        Assert.Contains("cp /claude-login/.credentials.json \"$HOME/.claude/.credentials.json\"", entrypoint, StringComparison.Ordinal);
        var (exitCode, output) = await RunAsync("/bin/sh", "-n", "config/docker-entrypoint.sh");
        Assert.True(exitCode == 0, output);
    }
}
