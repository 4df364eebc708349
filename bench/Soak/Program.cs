// A bounded soak of ClaudeProxy against the fake Anthropic API, with the real CLI (--cli real) or the fake CLI (--cli
// fake). It starts the gateway (Release build) as its own process on 127.0.0.1, in one of three modes:
//
//   mixed (default)   mixed traffic at a fixed concurrency, a share of clients hanging up mid-answer, --rounds times in
//                     the same gateway after a warm-up of 200 such requests; reports outcomes by status, claude
//                     processes left once kept ones idled out (must be 0), and the gateway's RSS, GC heap, pool
//                     threads and compiled methods after the warm-up and after each round.
//   --conversations N N new kept conversations (an id each), with the gateway's retention set to --max-conversations
//                     and --retention-interval; reports mappings, working folders and CLI session files left, and the
//                     disk they use.
//   --streams N       N streamed answers open at once (the fake CLI answers slowly); reports the gateway's own RSS
//                     while they are all open (CLI processes are separate processes and not counted).
//
//   dotnet run -c Release --project bench/Soak -- [--requests 2000] [--concurrency 32] [--disconnect 0.1] [--rounds 1]
//       [--cli fake|real] [--spares 0] [--conversations N --max-conversations 500 --retention-interval 00:00:02]
//       [--streams 64] [--gc workstation|server]
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ClaudeProxy.TestSupport;

var settings = args.Chunk(2).ToDictionary(pair => pair[0].TrimStart('-'), pair => pair.Length > 1 ? pair[1] : "");
int Setting(string name, int fallback) => settings.TryGetValue(name, out var value) ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;
var realCli = settings.GetValueOrDefault("cli", "fake") == "real";
var mode = settings.ContainsKey("conversations") ? "conversations" : settings.ContainsKey("streams") ? "streams" : "mixed";

var gatewayDll = Path.Combine(RepoPaths.Root, "src", "Gateway", "bin", "Release", "net10.0", "ClaudeProxy.Gateway.dll");
if (!File.Exists(gatewayDll))
{
    Console.Error.WriteLine($"Build the gateway first: dotnet build src/Gateway -c Release ({gatewayDll} is missing)");
    return 1;
}

await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo", "--chunk-chars", "16", "--chunk-delay-ms", "20");
var data = Directory.CreateTempSubdirectory("soak-").FullName;
var home = Directory.CreateTempSubdirectory("soak-home-").FullName;
var marker = Guid.NewGuid().ToString("N");
var replay = Path.Combine(RepoPaths.Fixtures, "print_stream_json_partial", "stdout.txt");
var environment = new Dictionary<string, string>
{
    ["OLLAMA_URL"] = "none",
    ["ClaudeBackend__Models__0__WarmSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["ClaudeBackend__Models__0__WarmConversationSpares"] = settings.GetValueOrDefault("spares", "0"),
    // Spares on demand too, so that "processes left" counts leaks only.
    ["ClaudeBackend__Models__0__MaxWarmSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["ClaudeBackend__Models__1__MaxWarmSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["ClaudeBackend__Models__2__MaxWarmSpares"] = settings.GetValueOrDefault("spares", "0"),
    ["CLAUDE_CLI"] = realCli ? RepoPaths.RealClaudeCli : Path.Combine(AppContext.BaseDirectory, "fake-claude"),
    ["ClaudeBackend__DataDirectory"] = data,
    ["ClaudeBackend__MaxQueuedTurns"] = "1000",
    ["ClaudeBackend__QueueTimeout"] = "00:05:00",
    // Kept conversations' processes end 2 s after their last turn, so none should be left once the run is over.
    ["ClaudeBackend__KeptProcessIdleTimeout"] = "00:00:02",
    ["ClaudeBackend__Environment__ANTHROPIC_BASE_URL"] = api.BaseUrl,
    ["ClaudeBackend__Environment__ANTHROPIC_API_KEY"] = "sk-ant-fake",
    ["ClaudeBackend__Environment__HOME"] = home,
    ["ClaudeBackend__Environment__FAKE_CLAUDE_SCRIPT"] = mode == "streams"
        ? $"replay={replay};delay-ms=1000"
        : $"replay={replay};delay-ms=10",
    [$"ClaudeBackend__Environment__{ProcessProbe.MarkerVariable}"] = marker,
};
if (settings.TryGetValue("gc", out var gc))
{
    environment["DOTNET_gcServer"] = gc == "server" ? "1" : "0";
}

if (mode == "conversations")
{
    environment["ClaudeBackend__MaxConversations"] = settings.GetValueOrDefault("max-conversations", "500");
    environment["ClaudeBackend__RetentionInterval"] = settings.GetValueOrDefault("retention-interval", "00:00:02");
}
else if (mode == "streams")
{
    environment["ClaudeBackend__MaxConcurrentProcesses"] = settings.GetValueOrDefault("streams", "64");
}

using var gateway = await GatewayProcess.StartAsync(gatewayDll, environment);
var http = gateway.Client;

// Warm up with a tenth of a round of the same mix, so that the rounds compare a gateway that has served every kind of
// request (compiled its code, grown its pools), not one that has only started.
var warmUp = 0;
await Task.WhenAll(Enumerable.Range(0, 32).Select(async worker =>
{
    var random = new Random(-1 - worker);
    while (Interlocked.Increment(ref warmUp) <= 200)
    {
        await SendOneAsync(http, random, 0.1);
    }
}));
await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(10));

var rssWarm = RssMiB(gateway.Process.Id);
Console.WriteLine($"gateway RSS after warm-up: {rssWarm:0} MiB; CLI: {(realCli ? "real" : "fake")}");
return mode switch
{
    "conversations" => await ConversationsAsync(),
    "streams" => await StreamsAsync(),
    _ => await MixedAsync(),
};

async Task<int> MixedAsync()
{
    var total = Setting("requests", 2000);
    var concurrency = Setting("concurrency", 32);
    var disconnectShare = settings.TryGetValue("disconnect", out var share) ? double.Parse(share, CultureInfo.InvariantCulture) : 0.1;
    var failed = false;
    for (var round = 1; round <= Setting("rounds", 1); round++)
    {
        var outcomes = new ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
        {
            var random = new Random(worker * 1000 + round);
            while (Interlocked.Increment(ref next) <= total)
            {
                var outcome = await SendOneAsync(http, random, disconnectShare);
                outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);
            }
        }));
        var elapsed = clock.Elapsed;

        var left = await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(10));
        await Task.Delay(2000);
        var rss = RssMiB(gateway.Process.Id);
        Console.WriteLine($"round {round}: {total} requests at concurrency {concurrency}, {disconnectShare:P0} disconnects, {elapsed.TotalSeconds:0.0} s ({total / elapsed.TotalSeconds:0.0} req/s)");
        foreach (var (outcome, count) in outcomes.OrderBy(o => o.Key))
        {
            Console.WriteLine($"  {outcome}: {count}");
        }

        Console.WriteLine($"  claude processes left: {left.Count}");
        foreach (var pid in left)
        {
            Console.WriteLine($"    pid {pid}: {File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ')}");
        }

        Console.WriteLine($"  gateway RSS after round {round}: {rss:0} MiB ({rss / rssWarm:0.00} of the warm-up's), GC heap after its last collection: {await RuntimeMetricAsync("dotnet_gc_last_collection_heap_size_bytes") / (1024 * 1024):0.0} MiB, {await RuntimeMetricAsync("dotnet_thread_pool_thread_count_total"):0} pool threads, {await RuntimeMetricAsync("dotnet_jit_compiled_methods_total"):0} methods compiled");
        failed |= left.Count > 0 || outcomes.Keys.Any(k => k.StartsWith('5'));
    }

    return failed ? 1 : 0;
}

async Task<int> ConversationsAsync()
{
    var total = Setting("conversations", 2000);
    var concurrency = Setting("concurrency", 4);
    var outcomes = new ConcurrentDictionary<string, int>();
    var clock = Stopwatch.StartNew();
    var next = 0;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
    {
        int n;
        while ((n = Interlocked.Increment(ref next)) <= total)
        {
            using var response = await http.PostAsync("/api/chat", new StringContent($$"""{"model":"claude-sonnet:latest","id":"soak-{{n}}","stream":false,"messages":[{"role":"user","content":"conversation {{n}}"}]}"""));
            outcomes.AddOrUpdate(((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), 1, (_, c) => c + 1);
        }
    }));
    var elapsed = clock.Elapsed;

    // Past the last retention sweep, and past the kept processes' idle timeout (they write their sessions as they end).
    await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(30));
    await Task.Delay(TimeSpan.Parse(environment["ClaudeBackend__RetentionInterval"], CultureInfo.InvariantCulture) * 2 + TimeSpan.FromSeconds(1));

    var mappings = JsonDocument.Parse(File.ReadAllText(Path.Combine(data, "conversations.json"))).RootElement.GetProperty("conversations").EnumerateObject().Count();
    var folders = Directory.GetDirectories(Path.Combine(data, "conversations")).Length;
    var configDirectory = Path.Combine(home, ".claude");
    var sessionFiles = Directory.Exists(Path.Combine(configDirectory, "projects"))
        ? Directory.GetFiles(Path.Combine(configDirectory, "projects"), "*.jsonl", SearchOption.AllDirectories).Length
        : 0;
    var projectFolders = Directory.Exists(Path.Combine(configDirectory, "projects")) ? Directory.GetDirectories(Path.Combine(configDirectory, "projects")).Length : 0;
    Console.WriteLine($"{total} new kept conversations at concurrency {concurrency}, cap {environment["ClaudeBackend__MaxConversations"]}, {elapsed.TotalSeconds:0.0} s");
    foreach (var (outcome, count) in outcomes.OrderBy(o => o.Key))
    {
        Console.WriteLine($"  {outcome}: {count}");
    }

    Console.WriteLine($"  mappings: {mappings}, working folders: {folders}, CLI project folders: {projectFolders}, CLI session files: {sessionFiles}");
    Console.WriteLine($"  disk: data folder {DiskKiB(data):0} KiB (conversations.json {new FileInfo(Path.Combine(data, "conversations.json")).Length / 1024.0:0} KiB), CLI config folder {DiskKiB(configDirectory):0} KiB");
    Console.WriteLine($"  gateway RSS: {RssMiB(gateway.Process.Id):0} MiB");
    var cap = int.Parse(environment["ClaudeBackend__MaxConversations"], CultureInfo.InvariantCulture);
    return mappings <= cap && folders == mappings && sessionFiles == mappings && outcomes.Keys.All(k => k == "200") ? 0 : 1;
}

async Task<int> StreamsAsync()
{
    var count = Setting("streams", 64);
    var responses = new List<(HttpResponseMessage Response, Stream Body)>();
    var opened = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat")
        {
            Content = new StringContent($$"""{"model":"claude-sonnet:latest","messages":[{"role":"user","content":"stream {{i}}"}]}"""),
        };
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var body = await response.Content.ReadAsStreamAsync();
        // The first chunk is out: the stream is open and the CLI behind it still answering.
        _ = await body.ReadAsync(new byte[1]);
        return (response, body);
    }));
    responses.AddRange(opened);
    var cliProcesses = ProcessProbe.FindMarked(marker).Count;
    var rss = RssMiB(gateway.Process.Id);
    Console.WriteLine($"{count} streams open at once, {cliProcesses} CLI processes: gateway RSS {rss:0} MiB (CLI processes not counted)");
    foreach (var (response, body) in responses)
    {
        await body.DisposeAsync();
        response.Dispose();
    }

    await ProcessProbe.WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(30));
    return cliProcesses >= count ? 0 : 1;
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

// The runtime's own figures (System.Runtime meter), summed over their series: e.g. what the managed heap held after the
// last GC (free space not counted), or how many thread pool threads there are.
async Task<double> RuntimeMetricAsync(string name) =>
    (await http.GetStringAsync("/metrics")).Split('\n')
        .Where(l => l.StartsWith(name, StringComparison.Ordinal) && (l.Length == name.Length || l[name.Length] is ' ' or '{'))
        .Sum(l => double.Parse(l.Split(' ')[^1], CultureInfo.InvariantCulture));

static double RssMiB(int pid) =>
    File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
        .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] is var kb ? double.Parse(kb, CultureInfo.InvariantCulture) / 1024 : 0;

static double DiskKiB(string folder)
{
    using var du = Process.Start(new ProcessStartInfo("du", ["-sk", folder]) { RedirectStandardOutput = true })!;
    var output = du.StandardOutput.ReadToEnd();
    du.WaitForExit();
    return double.Parse(output.Split('\t')[0], CultureInfo.InvariantCulture);
}
