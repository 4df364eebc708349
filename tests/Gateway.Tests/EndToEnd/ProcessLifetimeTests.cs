using System.Net;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>The real CLI's processes live exactly as long as the gateway (its own process here) that started them.</summary>
public sealed class ProcessLifetimeTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static async Task<GatewayProcess> StartGatewayAsync(FakeAnthropicServer api, string marker, string data, string? minThreads = null)
    {
        RealCli.EnsureInstalled();
        var environment = new Dictionary<string, string>
        {
            ["OLLAMA_URL"] = "none",
            ["CLAUDE_CLI"] = RepoPaths.RealClaudeCli,
            ["ClaudeBackend__DataDirectory"] = data,
            ["ClaudeBackend__Environment__HOME"] = Directory.CreateTempSubdirectory("lifetime-home-").FullName,
            ["ClaudeBackend__Environment__ANTHROPIC_BASE_URL"] = api.BaseUrl,
            ["ClaudeBackend__Environment__ANTHROPIC_API_KEY"] = "sk-ant-fake",
            [$"ClaudeBackend__Environment__{ProcessProbe.MarkerVariable}"] = marker,
        };
        if (minThreads is not null)
        {
            environment["DOTNET_ThreadPool_ForceMinWorkerThreads"] = minThreads;
        }

        return await GatewayProcess.StartAsync(Path.Combine(AppContext.BaseDirectory, "ClaudeProxy.Gateway.dll"), environment);
    }

    private static StringContent Turn(string body) => new(body, System.Text.Encoding.UTF8, "application/json");

    [Fact]
    public async Task Kill_9_of_the_gateway_leaves_no_cli_process_behind()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:" + new string('x', 400), "--chunk-chars", "4", "--chunk-delay-ms", "200");
        var marker = Guid.NewGuid().ToString("N");
        using var gateway = await StartGatewayAsync(api, marker, Directory.CreateTempSubdirectory("lifetime-data-").FullName);
        var client = gateway.Client;

        // The shipped defaults keep spares waiting; a kept conversation keeps its process; a slow answer is streaming.
        await api.ConfigureAsync("""{"chunk_delay_ms": 0}""");
        using (var kept = await client.PostAsync("/api/chat", Turn("""{"model":"claude-sonnet:latest","id":"kept","stream":false,"messages":[{"role":"user","content":"x"}]}"""), Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        }

        await api.ConfigureAsync("""{"chunk_delay_ms": 200}""");
        using var streaming = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Turn("""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"slow"}]}""") }, HttpCompletionOption.ResponseHeadersRead, Cancel);
        var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync(Cancel));
        Assert.Contains("xxxx", await reader.ReadLineAsync(Cancel), StringComparison.Ordinal);
        var running = ProcessProbe.FindMarked(marker);
        Assert.True(running.Count >= 3, $"expected the streaming chat's, the kept and the spares' processes, found {running.Count}");

        gateway.Process.Kill(entireProcessTree: false);

        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(3)));
    }

    [Fact]
    public async Task A_kept_process_outlives_the_thread_pool_threads_that_come_and_go_meanwhile()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        var marker = Guid.NewGuid().ToString("N");
        // Up to 64 pool threads start without delay (hex), so the burst below makes many, nearly all of which then retire.
        var data = Directory.CreateTempSubdirectory("lifetime-data-").FullName;
        using var gateway = await StartGatewayAsync(api, marker, data, minThreads: "0x40");
        var client = gateway.Client;
        using (var first = await client.PostAsync("/api/chat", Turn("""{"model":"claude-sonnet:latest","id":"long-lived","stream":false,"messages":[{"role":"user","content":"one"}]}"""), Cancel))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var kept = KeptProcessOf(data, marker, "long-lived");

        // A burst grows the thread pool; then the gateway idles past the 20 s after which idle pool threads exit.
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => client.GetAsync("/api/tags", Cancel)));
        await Task.Delay(TimeSpan.FromSeconds(25), Cancel);
        Assert.Contains(kept, ProcessProbe.FindMarked(marker));

        using var second = await client.PostAsync("/api/chat", Turn("""{"model":"claude-sonnet:latest","id":"long-lived","stream":false,"messages":[{"role":"user","content":"two"}]}"""), Cancel);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var metrics = await client.GetStringAsync("/metrics", Cancel);
        Assert.Contains(metrics.Split('\n'), line => line.StartsWith("claudeproxy_cli_turns_total{", StringComparison.Ordinal) && line.Contains("start=\"kept\"", StringComparison.Ordinal) && line.EndsWith(" 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_gateway_that_starts_ends_the_cli_processes_a_dead_one_left_behind()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "history");
        var data = Directory.CreateTempSubdirectory("lifetime-data-").FullName;
        var marker = Guid.NewGuid().ToString("N");
        // A leftover as the ledger records it: a process of a gateway (this dead pid) that never ended it.
        using var leftover = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sleep", "300") { Environment = { [ProcessProbe.MarkerVariable] = marker } })!;
        using var deadGateway = System.Diagnostics.Process.Start("true")!;
        await deadGateway.WaitForExitAsync(Cancel);
        Directory.CreateDirectory(Path.Combine(data, "processes"));
        await File.WriteAllTextAsync(Path.Combine(data, "processes", leftover.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), $"{StartTicks(leftover.Id)} {deadGateway.Id} 1", Cancel);

        using var gateway = await StartGatewayAsync(api, Guid.NewGuid().ToString("N"), data);

        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(3)));
        Assert.False(File.Exists(Path.Combine(data, "processes", leftover.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }

    /// <summary>The process kept up for a conversation: the one started for its session (found in the store's mapping).</summary>
    private static int KeptProcessOf(string data, string marker, string conversationId)
    {
        var session = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(data, "conversations.json"))).RootElement
            .GetProperty("conversations").GetProperty("-:" + conversationId).GetProperty("sessionId").GetString()!;
        return Assert.Single(ProcessProbe.FindStartedByGateway(marker), pid => ProcessProbe.CommandLineOf(pid).Contains(session, StringComparison.Ordinal));
    }

    private static long StartTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19], System.Globalization.CultureInfo.InvariantCulture);
    }
}
