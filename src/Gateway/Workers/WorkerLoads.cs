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

    private readonly ConditionalWeakTable<DestinationState, StrongBox<int>> _reported = [];

    /// <summary>
    /// The worker's load: the more of this front's turns on it now and the turns it reported (which counted this
    /// front's own at the time).
    /// </summary>
    public int Of(DestinationState destination) =>
        Math.Max(destination.ConcurrentRequestCount, _reported.TryGetValue(destination, out var reported) ? Volatile.Read(ref reported.Value) : 0);

    /// <summary>Takes what a probe's answer says; an answer without it (a worker of an earlier version) says nothing.</summary>
    public void Report(DestinationState destination, HttpResponseMessage? response)
    {
        if (response is not null && response.Headers.TryGetValues(Header, out var values)
            && int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var turns))
        {
            Volatile.Write(ref _reported.GetOrCreateValue(destination).Value, turns);
        }
        else
        {
            _reported.Remove(destination);
        }
    }
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
