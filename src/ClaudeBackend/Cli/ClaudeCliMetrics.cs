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
    private readonly UpDownCounter<long> _kept;
    private readonly Counter<long> _recycled;

    public ClaudeCliMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _running = meter.CreateUpDownCounter<long>("claudeproxy.cli.processes", "{process}", "Claude CLI processes running now.");
        _startDuration = meter.CreateHistogram("claudeproxy.cli.start.duration", "s", "From spawning a Claude CLI process to its first line on stdout.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 5, 10] });
        _starts = meter.CreateCounter<long>("claudeproxy.cli.starts", "{process}", "Claude CLI processes started, by outcome of the start.");
        _queued = meter.CreateUpDownCounter<long>("claudeproxy.requests.queued", "{request}", "Turns waiting for a free CLI process now.");
        _rejected = meter.CreateCounter<long>("claudeproxy.requests.rejected", "{request}", "Turns refused because the queue was full or the wait timed out, by reason.");
        _turns = meter.CreateCounter<long>("claudeproxy.cli.turns", "{turn}", "Turns by where their process came from: warm (a waiting spare), kept (the conversation's own process, still up) or cold (spawned for the turn).");
        _spares = meter.CreateUpDownCounter<long>("claudeproxy.cli.spares", "{process}", "Warm CLI processes waiting for a turn now.");
        _kept = meter.CreateUpDownCounter<long>("claudeproxy.cli.kept", "{process}", "CLI processes kept up for their conversation's next turn now.");
        _recycled = meter.CreateCounter<long>("claudeproxy.cli.recycled", "{process}", "Kept CLI processes ended, by reason: idle, turns, memory, evicted, changed, unclean, retention, stopping.");
        _queueWait = meter.CreateHistogram("claudeproxy.requests.queue.duration", "s", "How long a turn waited for a free CLI process.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60] });
    }

    /// <param name="start"><c>warm</c>, <c>kept</c> or <c>cold</c>.</param>
    public void TurnStarted(string start) => _turns.Add(1, new KeyValuePair<string, object?>("start", start));

    public void SpareReady(int delta) => _spares.Add(delta);

    public void Kept(int delta) => _kept.Add(delta);

    public void Recycled(string reason) => _recycled.Add(1, new KeyValuePair<string, object?>("reason", reason));

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
