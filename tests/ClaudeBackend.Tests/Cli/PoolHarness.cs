using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

/// <summary>
/// The pool's parts over real processes of the fake CLI (tests/FakeClaude), with their timers on a
/// <see cref="FakeTimeProvider"/>: idle limits, eviction and backoff happen when a test advances the clock.
/// </summary>
internal sealed class PoolHarness : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("pool-data-").FullName;
    private readonly string _home = Directory.CreateTempSubdirectory("pool-home-").FullName;
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly IOptions<ClaudeBackendOptions> _options;
    private readonly ClaudeCliEnvironment _cli;

    public PoolHarness(Action<ClaudeBackendOptions>? configure = null)
    {
        var settings = new ClaudeBackendOptions
        {
            CliPath = RepoPaths.FakeClaudeCli,
            DataDirectory = _data,
            Environment = new() { ["HOME"] = _home },
            Models = [new ClaudeModelOptions { Name = "claude-sonnet:latest", CliModel = "sonnet", MaxWarmSpares = 0 }],
        };
        configure?.Invoke(settings);
        _options = Options.Create(settings);
        _cli = new ClaudeCliEnvironment(_options);
        Metrics = new ClaudeCliMetrics(_meters.GetRequiredService<IMeterFactory>());
        Launcher = new CliWrapClaudeLauncher(_options, _cli, new ClaudeCliLedger(_options, NullLogger<ClaudeCliLedger>.Instance), Metrics, Time, NullLogger<CliWrapClaudeLauncher>.Instance);
    }

    public FakeTimeProvider Time { get; } = new();

    public ClaudeBackendOptions Settings => _options.Value;

    public ClaudeCliMetrics Metrics { get; }

    public CliWrapClaudeLauncher Launcher { get; }

    public KeptProcesses Kept() => new(Metrics, _options, Time, NullLogger<KeptProcesses>.Instance);

    /// <summary>What the parts logged: a lost spare's replacement is scheduled by the time its loss is logged.</summary>
    public FakeLogCollector Logs { get; } = new();

    public WarmSpares Spares() =>
        new(Launcher, _cli, new ClaudeModelCatalog(_options), new ConversationStore(_options, Time), Metrics, _options, Time, new FakeLogger<WarmSpares>(Logs));

    public MetricCollector<long> Collect(string instrument) =>
        new(_meters.GetRequiredService<IMeterFactory>(), ClaudeCliMetrics.MeterName, instrument);

    /// <summary>A process for a new kept conversation, as the pool starts one cold, watched by <paramref name="kept"/>.</summary>
    public (Guid Session, ResidentClaudeProcess Process) StartConversation(KeptProcesses kept)
    {
        var session = Guid.NewGuid();
        var invocation = new ClaudeCliInvocation("sonnet", "", Directory.CreateTempSubdirectory("pool-work-").FullName, ClaudeSessionMode.Create, session, SystemPrompt: null);
        var process = new ResidentClaudeProcess(Launcher, invocation, fingerprint: "sonnet");
        kept.Track(session, process);
        return (session, process);
    }

    /// <summary>A turn's invocation that carries only its input line.</summary>
    public static ClaudeCliInvocation Invocation(string inputLine, string cliModel = "sonnet") =>
        new(cliModel, inputLine, Path.GetTempPath(), ClaudeSessionMode.Ephemeral, SessionId: null, SystemPrompt: null);

    /// <summary>One whole turn of <paramref name="sessionId"/> on <paramref name="process"/>; once it is over, the process is kept or ended.</summary>
    /// <param name="keepAlive">The turn's keep_alive: how long the process then waits idle.</param>
    public static async Task TurnAsync(KeptProcesses kept, Guid sessionId, ResidentClaudeProcess process, TimeSpan? keepAlive = null)
    {
        var run = kept.BeginTurn(sessionId, process, Invocation("""{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hi"}]}}""") with { KeepAlive = keepAlive });
        await foreach (var _ in run.Output.ReadAllAsync(TestContext.Current.CancellationToken))
        {
        }

        await run.DisposeAsync();
    }

    public void Dispose()
    {
        Launcher.StopAllAsync().Wait(TimeSpan.FromSeconds(10));
        _meters.Dispose();
        foreach (var folder in (string[])[_data, _home])
        {
            TemporaryPaths.TryDelete(folder);
        }
    }
}
