namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// How many warm spares recent demand calls for, per model: the most new chats that started within any
/// <see cref="Burst"/> during the last <c>window</c>. Clients often send new chats in bursts (Open WebUI sends the chat,
/// then a title and a tags request), and a spare takes about 0.6 s to load, so the pool keeps as many ready as the
/// last burst used.
/// </summary>
internal sealed class SpareDemand(TimeProvider timeProvider, TimeSpan window)
{
    /// <summary>New chats this close together count as one burst: well beyond a spare's load time.</summary>
    public static readonly TimeSpan Burst = TimeSpan.FromSeconds(10);

    /// <summary>More starts than this per model are not remembered; no pool keeps that many spares.</summary>
    private const int MaxRemembered = 256;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Queue<long>> _starts = new(StringComparer.Ordinal);

    public TimeSpan Window => window;

    /// <summary>Counts a new chat for <paramref name="cliModel"/>, whether a spare served it or not.</summary>
    public void Record(string cliModel)
    {
        lock (_gate)
        {
            if (!_starts.TryGetValue(cliModel, out var starts))
            {
                _starts[cliModel] = starts = new Queue<long>();
            }

            starts.Enqueue(timeProvider.GetTimestamp());
            while (starts.Count > MaxRemembered)
            {
                starts.Dequeue();
            }
        }
    }

    /// <summary>The most new chats of <paramref name="cliModel"/> that started within one burst during the window.</summary>
    public int Peak(string cliModel)
    {
        lock (_gate)
        {
            if (!_starts.TryGetValue(cliModel, out var starts))
            {
                return 0;
            }

            while (starts.TryPeek(out var oldest) && timeProvider.GetElapsedTime(oldest) > window)
            {
                starts.Dequeue();
            }

            var times = starts.ToArray();
            var peak = 0;
            for (int first = 0, last = 0; last < times.Length; last++)
            {
                while (timeProvider.GetElapsedTime(times[first], times[last]) > Burst)
                {
                    first++;
                }

                peak = Math.Max(peak, last - first + 1);
            }

            return peak;
        }
    }
}
