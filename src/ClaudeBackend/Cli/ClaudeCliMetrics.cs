using System.Diagnostics.Metrics;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>What the CLI processes cost: how many run, and how long one takes to print its first line.</summary>
public sealed class ClaudeCliMetrics
{
    public const string MeterName = "ClaudeProxy.ClaudeBackend";

    private readonly UpDownCounter<long> _running;
    private readonly Histogram<double> _startDuration;
    private readonly Counter<long> _starts;
    private readonly UpDownCounter<long> _queued;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _queueWait;
    private readonly Counter<long> _turns;
    private readonly UpDownCounter<long> _spares;

    public ClaudeCliMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _running = meter.CreateUpDownCounter<long>("claudeproxy.cli.processes", "{process}", "Claude CLI processes running now.");
        _startDuration = meter.CreateHistogram("claudeproxy.cli.start.duration", "s", "From spawning a Claude CLI process to its first line on stdout.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 5, 10] });
        _starts = meter.CreateCounter<long>("claudeproxy.cli.starts", "{process}", "Claude CLI processes started, by outcome of the start.");
        _queued = meter.CreateUpDownCounter<long>("claudeproxy.requests.queued", "{request}", "Turns waiting for a free CLI process now.");
        _rejected = meter.CreateCounter<long>("claudeproxy.requests.rejected", "{request}", "Turns refused because the queue was full or the wait timed out, by reason.");
        _turns = meter.CreateCounter<long>("claudeproxy.cli.turns", "{turn}", "Turns by how their process started: warm (a waiting spare) or cold.");
        _spares = meter.CreateUpDownCounter<long>("claudeproxy.cli.spares", "{process}", "Warm CLI processes waiting for a turn now.");
        _queueWait = meter.CreateHistogram("claudeproxy.requests.queue.duration", "s", "How long a turn waited for a free CLI process.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60] });
    }

    public void TurnStarted(bool warm) => _turns.Add(1, new KeyValuePair<string, object?>("start", warm ? "warm" : "cold"));

    public void SpareReady(int delta) => _spares.Add(delta);

    public void Queued(int delta) => _queued.Add(delta);

    public void Rejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void QueueWait(TimeSpan waited) => _queueWait.Record(waited.TotalSeconds);

    public void Started() => _running.Add(1);

    public void Exited() => _running.Add(-1);

    public void FirstOutput(TimeSpan sinceSpawn)
    {
        _startDuration.Record(sinceSpawn.TotalSeconds);
        _starts.Add(1, new KeyValuePair<string, object?>("outcome", "ok"));
    }

    public void FailedToStart() => _starts.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
}
