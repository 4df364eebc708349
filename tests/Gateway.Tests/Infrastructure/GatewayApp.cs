using System.Diagnostics.Metrics;
using ClaudeProxy.TestSupport;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>
/// The whole gateway in the test process, with its own data folder, HOME and process marker. Settings go in as
/// configuration, exactly as an operator's would.
/// </summary>
public sealed class GatewayApp : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    private GatewayApp(Dictionary<string, string?> settings, bool kestrel)
    {
        _settings = settings;
        if (kestrel)
        {
            // A real socket on 127.0.0.1 for real clients (curl, the SDKs) and real streaming.
            UseKestrel(0);
        }
    }

    /// <summary>Marks every CLI process (and its children) this app starts: see <see cref="ProcessProbe"/>.</summary>
    public string Marker { get; } = Guid.NewGuid().ToString("N");

    public string DataDirectory => _settings["ClaudeBackend:DataDirectory"]!;

    public string Home => _settings["ClaudeBackend:Environment:HOME"]!;

    /// <summary>The gateway in front of the real CLI, which talks to <paramref name="api"/>.</summary>
    public static GatewayApp WithRealCli(FakeAnthropicServer api, bool kestrel = false, Action<Dictionary<string, string?>>? configure = null, GatewayApp? sameStoreAs = null)
    {
        RealCli.EnsureInstalled();
        var settings = BaseSettings(RepoPaths.RealClaudeCli, sameStoreAs);
        settings["ClaudeBackend:Environment:ANTHROPIC_BASE_URL"] = api.BaseUrl;
        settings["ClaudeBackend:Environment:ANTHROPIC_API_KEY"] = "sk-ant-fake";
        configure?.Invoke(settings);
        return new GatewayApp(settings, kestrel);
    }

    /// <summary>The gateway in front of tests/FakeClaude, which follows <paramref name="script"/>.</summary>
    public static GatewayApp WithFakeCli(string script = "", bool kestrel = false, Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = BaseSettings(RepoPaths.FakeClaudeCli, null);
        settings["ClaudeBackend:Environment:FAKE_CLAUDE_SCRIPT"] = script;
        settings["ClaudeBackend:Environment:FAKE_CLAUDE_LOG"] = Path.Combine(settings["ClaudeBackend:DataDirectory"]!, "fake-claude.jsonl");
        configure?.Invoke(settings);
        return new GatewayApp(settings, kestrel);
    }

    /// <summary>Puts <paramref name="ollamaUrl"/> behind the gateway as its Ollama.</summary>
    public static Action<Dictionary<string, string?>> WithOllama(string ollamaUrl) => settings => settings["Gateway:OllamaUrl"] = ollamaUrl;

    public string FakeCliLog => Path.Combine(DataDirectory, "fake-claude.jsonl");

    /// <summary>
    /// This app's own measurements of an observable instrument, now. Every gateway in a test process exports through
    /// every /metrics, so a value of this app's is read from its own meters.
    /// </summary>
    public IReadOnlyList<CollectedMeasurement<T>> MeasureNow<T>(string meterName, string instrument)
        where T : struct
    {
        using var collector = new MetricCollector<T>(Services.GetRequiredService<IMeterFactory>(), meterName, instrument);
        collector.RecordObservableInstruments();
        return collector.GetMeasurementSnapshot();
    }

    private static Dictionary<string, string?> BaseSettings(string cliPath, GatewayApp? sameStoreAs) => new()
    {
        // No Ollama unless a test puts one behind the gateway (a developer's real one must never answer a test).
        ["Gateway:OllamaUrl"] = "none",
        // No warm spares unless a test asks, not even on demand: they are processes of their own that tests count and wait for.
        ["ClaudeBackend:Models:0:WarmSpares"] = "0",
        ["ClaudeBackend:Models:0:WarmConversationSpares"] = "0",
        ["ClaudeBackend:Models:0:MaxWarmSpares"] = "0",
        ["ClaudeBackend:Models:1:MaxWarmSpares"] = "0",
        ["ClaudeBackend:Models:2:MaxWarmSpares"] = "0",
        ["ClaudeBackend:CliPath"] = cliPath,
        ["ClaudeBackend:DataDirectory"] = sameStoreAs?.DataDirectory ?? Directory.CreateTempSubdirectory("gateway-data-").FullName,
        ["ClaudeBackend:Environment:HOME"] = sameStoreAs?.Home ?? Directory.CreateTempSubdirectory("gateway-home-").FullName,
        // Gateway.Tests.SerializedHop runs the hop's tests again with turns sent as bytes, as to a worker behind a socket.
#if SERIALIZED_HOP
        ["ClaudeBackend:SerializedHop"] = "true",
#endif
    };

    /// <summary>Every error the gateway logged, with its exception: a test can prove nothing went unhandled.</summary>
    public ErrorLogCollector Errors { get; } = new();

    /// <summary>The messages the gateway logged so far, at every level its configuration lets through.</summary>
    public IReadOnlyList<string> Logs => Services.GetFakeLogCollector().GetSnapshot().Select(record => record.Message).ToList();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureLogging(logging => logging.AddProvider(Errors).AddFakeLogging());
        _settings[$"ClaudeBackend:Environment:{ProcessProbe.MarkerVariable}"] = Marker;
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
