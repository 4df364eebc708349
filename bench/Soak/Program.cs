// A bounded soak of ClaudeProxy: mixed traffic at a fixed concurrency, with a share of clients that hang up
// mid-answer, against the fake Anthropic API and the real CLI (--cli real) or the fake CLI (--cli fake).
// It starts the gateway (Release build) as its own process on 127.0.0.1 and reports: requests answered, outcomes by
// status and error code, claude processes left once the kept ones have idled out (must be 0), gateway memory before
// and after.
//
//   dotnet run -c Release --project bench/Soak -- [--requests 2000] [--concurrency 32] [--disconnect 0.1] [--cli fake|real]
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ClaudeProxy.TestSupport;

var settings = args.Chunk(2).ToDictionary(pair => pair[0].TrimStart('-'), pair => pair.Length > 1 ? pair[1] : "");
int Setting(string name, int fallback) => settings.TryGetValue(name, out var value) ? int.Parse(value) : fallback;
var total = Setting("requests", 2000);
var concurrency = Setting("concurrency", 32);
var disconnectShare = settings.TryGetValue("disconnect", out var share) ? double.Parse(share, System.Globalization.CultureInfo.InvariantCulture) : 0.1;
var realCli = settings.GetValueOrDefault("cli", "fake") == "real";

var gatewayDll = Path.Combine(RepoPaths.Root, "src", "Gateway", "bin", "Release", "net10.0", "ClaudeProxy.Gateway.dll");
if (!File.Exists(gatewayDll))
{
    Console.Error.WriteLine($"Build the gateway first: dotnet build src/Gateway -c Release ({gatewayDll} is missing)");
    return 1;
}

await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo", "--chunk-chars", "16", "--chunk-delay-ms", "20");
var data = Directory.CreateTempSubdirectory("soak-").FullName;
var marker = Guid.NewGuid().ToString("N");
using var gateway = await GatewayProcess.StartAsync(gatewayDll, new Dictionary<string, string>
{
    ["OLLAMA_URL"] = "none",
    ["ClaudeBackend__Models__0__WarmSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["ClaudeBackend__Models__0__WarmConversationSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["CLAUDE_CLI"] = realCli ? RepoPaths.RealClaudeCli : Path.Combine(AppContext.BaseDirectory, "fake-claude"),
    ["ClaudeBackend__DataDirectory"] = data,
    ["ClaudeBackend__MaxQueuedTurns"] = "1000",
    ["ClaudeBackend__QueueTimeout"] = "00:05:00",
    // Kept conversations' processes end 2 s after their last turn, so none should be left once the run is over.
    ["ClaudeBackend__KeptProcessIdleTimeout"] = "00:00:02",
    ["ClaudeBackend__Environment__ANTHROPIC_BASE_URL"] = api.BaseUrl,
    ["ClaudeBackend__Environment__ANTHROPIC_API_KEY"] = "sk-ant-fake",
    ["ClaudeBackend__Environment__HOME"] = Directory.CreateTempSubdirectory("soak-home-").FullName,
    ["ClaudeBackend__Environment__FAKE_CLAUDE_SCRIPT"] = $"replay={Path.Combine(RepoPaths.Fixtures, "print_stream_json_partial", "stdout.txt")};delay-ms=10",
    [$"ClaudeBackend__Environment__{ProcessProbe.MarkerVariable}"] = marker,
});
var http = gateway.Client;
{
    // Warm up, so "before" is the memory of a gateway that has served, not of one that has only started.
    for (var i = 0; i < 5; i++)
    {
        (await http.PostAsync("/api/chat", new StringContent("""{"model":"claude-haiku:latest","stream":false,"messages":[{"role":"user","content":"warm"}]}"""))).Dispose();
    }

    var rssBefore = RssMiB(gateway.Process.Id);
    var outcomes = new ConcurrentDictionary<string, int>();
    var clock = Stopwatch.StartNew();
    var next = 0;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
    {
        var random = new Random(worker);
        while (Interlocked.Increment(ref next) <= total)
        {
            var outcome = await SendOneAsync(http, random, disconnectShare);
            outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);
        }
    }));
    var elapsed = clock.Elapsed;

    var left = await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(10));
    GC.Collect();
    await Task.Delay(2000);
    var rssAfter = RssMiB(gateway.Process.Id);

    Console.WriteLine($"requests: {total} at concurrency {concurrency}, {disconnectShare:P0} disconnects, CLI: {(realCli ? "real" : "fake")}, {elapsed.TotalSeconds:0.0} s ({total / elapsed.TotalSeconds:0.0} req/s)");
    foreach (var (outcome, count) in outcomes.OrderBy(o => o.Key))
    {
        Console.WriteLine($"  {outcome}: {count}");
    }

    Console.WriteLine($"claude processes left: {left.Count}");
    foreach (var pid in left)
    {
        var status = File.ReadAllLines($"/proc/{pid}/status").Where(l => l.StartsWith("State", StringComparison.Ordinal) || l.StartsWith("PPid", StringComparison.Ordinal));
        Console.WriteLine($"  pid {pid}: {File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ')} {string.Join(" ", status)}");
    }

    var running = (await http.GetStringAsync("/metrics")).Split('\n').FirstOrDefault(l => l.StartsWith("claudeproxy_cli_processes", StringComparison.Ordinal));
    Console.WriteLine($"gateway's own count: {running}");
    Console.WriteLine($"gateway RSS: {rssBefore:0} MiB before, {rssAfter:0} MiB after (ratio {rssAfter / rssBefore:0.00})");
    return left.Count == 0 && !outcomes.Keys.Any(k => k.StartsWith('5')) ? 0 : 1;
}

static async Task<string> SendOneAsync(HttpClient http, Random random, double disconnectShare)
{
    var kind = random.Next(10);
    var (path, body) = kind switch
    {
        0 => ("/api/chat", """{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"stream me a reply"}]}"""),
        1 => ("/api/chat", """{"model":"claude-haiku:latest","stream":false,"messages":[{"role":"user","content":"once"}]}"""),
        2 => ("/v1/chat/completions", """{"model":"claude-sonnet:latest","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"sse"}]}"""),
        3 => ("/v1/chat/completions", """{"model":"claude-opus:latest","messages":[{"role":"user","content":"json"}]}"""),
        4 => ("/api/generate", """{"model":"claude-haiku:latest","prompt":"generate"}"""),
        5 => ("/api/chat", $$"""{"model":"claude-sonnet:latest","id":"soak-{{random.Next(20)}}","stream":false,"messages":[{"role":"user","content":"kept"}]}"""),
        6 => ("/api/chat", """{"model":"claude-sonnet:latest","messages":"""),
        7 => ("/api/chat", """{"model":"llama-nowhere:1b","messages":[{"role":"user","content":"x"}]}"""),
        _ => ("/api/tags", ""),
    };
    var disconnect = random.NextDouble() < disconnectShare;
    using var cancel = new CancellationTokenSource();
    try
    {
        using var request = new HttpRequestMessage(body.Length == 0 ? HttpMethod.Get : HttpMethod.Post, path);
        if (body.Length > 0)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        var stream = await response.Content.ReadAsStreamAsync(cancel.Token);
        if (disconnect)
        {
            _ = await stream.ReadAsync(new byte[64], cancel.Token);
            await cancel.CancelAsync();
            return "disconnected by the client";
        }

        var text = await new StreamReader(stream).ReadToEndAsync(cancel.Token);
        var code = (int)response.StatusCode;
        return code < 400 ? $"{code}" : $"{code} {ErrorCode(text)}";
    }
    catch (OperationCanceledException) when (disconnect)
    {
        return "disconnected by the client";
    }
    catch (HttpRequestException exception)
    {
        return "transport error: " + exception.Message;
    }
}

static string ErrorCode(string body)
{
    try
    {
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        return error.ValueKind == JsonValueKind.Object ? error.GetProperty("type").GetString() ?? "" : "ollama error";
    }
    catch (JsonException)
    {
        return "non-json body";
    }
}

static double RssMiB(int pid) =>
    File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
        .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] is var kb ? double.Parse(kb) / 1024 : 0;
