using System.Globalization;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>
/// How many turns each worker runs, as it said on its <c>/readyz</c> (<see cref="Header"/>) when the front last probed
/// it: every front's turns. A destination's own count (<see cref="DestinationState.ConcurrentRequestCount"/>) is only
/// this front's, which is all one front of several knows between probes.
/// </summary>
internal sealed class WorkerLoads
{
    /// <summary>The turns a gateway's Claude backend runs now, on its <c>/readyz</c> answer.</summary>
    public const string Header = "X-ClaudeProxy-Running-Turns";

    private readonly ConditionalWeakTable<DestinationState, ReportedLoad> _reported = [];

    /// <summary>
    /// The worker's load: the turns it reported, with this front's own started (or ended) since; never less than this
    /// front's own.
    /// </summary>
    public int Of(DestinationState destination)
    {
        var own = destination.ConcurrentRequestCount;
        return _reported.TryGetValue(destination, out var reported) ? Math.Max(own, reported.Turns + own - reported.OwnAtProbe) : own;
    }

    /// <summary>
    /// Takes what a probe's answer says. An answer without it (a worker of an earlier version) says nothing; a probe
    /// without an answer (a timeout, most likely on a busy worker) leaves the last report as it was.
    /// </summary>
    public void Report(DestinationState destination, HttpResponseMessage? response)
    {
        if (response is null)
        {
            return;
        }

        if (response.Headers.TryGetValues(Header, out var values)
            && int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var turns))
        {
            _reported.AddOrUpdate(destination, new ReportedLoad(turns, destination.ConcurrentRequestCount));
        }
        else
        {
            _reported.Remove(destination);
        }
    }

    /// <param name="OwnAtProbe">This front's own turns on the worker when the report came, which it counted.</param>
    private sealed record ReportedLoad(int Turns, int OwnAtProbe);
}

/// <summary>
/// YARP's consecutive-failures active health policy, which also takes each worker's load from the probe's answer
/// (<see cref="WorkerLoads"/>).
/// </summary>
internal sealed class WorkerLoadHealthPolicy(IServiceProvider services, WorkerLoads loads) : IActiveHealthCheckPolicy
{
    public const string PolicyName = "ClaudeProxy.ConsecutiveFailuresWithLoad";

    // Found once every policy is built: asking for them all while they are built would ask for this one too.
    private readonly Lazy<IActiveHealthCheckPolicy> _health = new(() =>
        services.GetServices<IActiveHealthCheckPolicy>().Single(policy => policy.Name == HealthCheckConstants.ActivePolicy.ConsecutiveFailures));

    public string Name => PolicyName;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        foreach (var result in probingResults)
        {
            loads.Report(result.Destination, result.Response);
        }

        _health.Value.ProbingCompleted(cluster, probingResults);
    }
}
