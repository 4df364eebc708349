using System.Collections.Concurrent;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.Gateway.Endpoints;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClaudeProxy.Gateway.Budgets;

/// <summary>What one API key (<c>""</c> for none) spent on one Claude model.</summary>
internal readonly record struct SpendKey(string ApiKey, string Model);

/// <summary>
/// What Claude turns cost, per API key and model, counted in each current day, week and month (UTC) from the CLI's own
/// <c>total_cost_usd</c>. Kept on local disk, or in Redis so that several gateways share one count.
/// </summary>
internal interface ISpendLedger
{
    /// <summary>Counts a finished turn's cost; never waits.</summary>
    void Add(SpendKey key, double usd, DateTimeOffset at);

    /// <summary>What was spent in the <paramref name="period"/> that holds <paramref name="at"/>, per key and model.</summary>
    ValueTask<IReadOnlyDictionary<SpendKey, double>> SpentAsync(BudgetPeriod period, DateTimeOffset at, CancellationToken cancellationToken);
}

/// <summary>
/// The count in this gateway's data directory (<c>spend.json</c>), written after every turn (whole or not at all), so
/// that a restart keeps it. Only the current periods are kept.
/// </summary>
internal sealed partial class LocalSpendLedger : ISpendLedger, IAsyncDisposable
{
    private const string FileName = "spend.json";

    private readonly string _file;
    private readonly ILogger<LocalSpendLedger> _logger;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Dictionary<string, Dictionary<string, double>> _periods;
    private Task _written = Task.CompletedTask;

    public LocalSpendLedger(IOptions<ClaudeBackendOptions> options, TimeProvider timeProvider, ILogger<LocalSpendLedger> logger)
    {
        _file = Path.Combine(options.Value.DataDirectory!, FileName);
        _logger = logger;
        // A damaged file is set aside, and the count starts again from nothing.
        _periods = JsonFile.Read(_file, GatewayJsonContext.Default.DictionaryStringDictionaryStringDouble, timeProvider) ?? [];
    }

    public void Add(SpendKey key, double usd, DateTimeOffset at)
    {
        lock (_gate)
        {
            foreach (var period in Enum.GetValues<BudgetPeriod>())
            {
                var window = BudgetWindow.Of(period, at);
                var counts = _periods.TryGetValue(window.Key, out var kept) ? kept : _periods[window.Key] = [];
                counts[FieldOf(key)] = counts.GetValueOrDefault(FieldOf(key)) + usd;
            }

            // Periods that have ended are of no budget any more.
            var current = Enum.GetValues<BudgetPeriod>().Select(period => BudgetWindow.Of(period, at).Key).ToHashSet(StringComparer.Ordinal);
            foreach (var ended in _periods.Keys.Where(k => !current.Contains(k)).ToList())
            {
                _periods.Remove(ended);
            }

            // Chained, so that the last write holds the last count and a stopping gateway waits for it.
            _written = _written.ContinueWith(_ => WriteAsync(), TaskScheduler.Default).Unwrap();
        }
    }

    public ValueTask<IReadOnlyDictionary<SpendKey, double>> SpentAsync(BudgetPeriod period, DateTimeOffset at, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyDictionary<SpendKey, double>>(_periods.TryGetValue(BudgetWindow.Of(period, at).Key, out var counts)
                ? counts.ToDictionary(c => KeyOf(c.Key), c => c.Value)
                : []);
        }
    }

    /// <summary>Waits for the last count to be written: a gateway that stops keeps every turn's cost.</summary>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            return new(_written);
        }
    }

    /// <summary>A key and model as one field (a key's name has no line break: it comes from configuration).</summary>
    internal static string FieldOf(SpendKey key) => $"{key.ApiKey}\n{key.Model}";

    internal static SpendKey KeyOf(string field) => field.Split('\n', 2) is [var apiKey, var model] ? new(apiKey, model) : new("", field);

    private async Task WriteAsync()
    {
        Dictionary<string, Dictionary<string, double>> snapshot;
        lock (_gate)
        {
            snapshot = _periods.ToDictionary(p => p.Key, p => new Dictionary<string, double>(p.Value), StringComparer.Ordinal);
        }

        try
        {
            await JsonFile.WriteAsync(_file, snapshot, GatewayJsonContext.Default.DictionaryStringDictionaryStringDouble, CancellationToken.None);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogNotWritten(_logger, _file, exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The spend count could not be written to {File}: a restart would lose the latest turns' cost")]
    private static partial void LogNotWritten(ILogger logger, string file, Exception exception);
}

/// <summary>
/// The count in Redis, one hash per period (<c>claudeproxy:spend:month:2026-12</c>, a field per key and model), shared by
/// every gateway before the same Redis. This gateway's own count stands in while Redis does not answer, or not within
/// <see cref="SharedRedis.LookupTimeout"/> (a budget is checked before every Claude turn); what it spends meanwhile is
/// added to the shared count once Redis is back.
/// </summary>
internal sealed partial class RedisSpendLedger(SharedRedis redis, IOptions<ClaudeBackendOptions> options, TimeProvider timeProvider,
    ILogger<RedisSpendLedger> logger, ILogger<LocalSpendLedger> localLogger)
    : ISpendLedger, IAsyncDisposable
{
    private readonly LocalSpendLedger _local = new(options, timeProvider, localLogger);
    private readonly ConcurrentQueue<(SpendKey Key, double Usd, DateTimeOffset At)> _unsent = new();

    public void Add(SpendKey key, double usd, DateTimeOffset at)
    {
        _local.Add(key, usd, at);
        _unsent.Enqueue((key, usd, at));
        if (redis.IsConnected)
        {
            _ = SendAsync();
        }
    }

    public async ValueTask<IReadOnlyDictionary<SpendKey, double>> SpentAsync(BudgetPeriod period, DateTimeOffset at, CancellationToken cancellationToken)
    {
        if (redis.IsConnected)
        {
            try
            {
                if (!_unsent.IsEmpty)
                {
                    await SendAsync();
                }

                var database = await redis.DatabaseAsync(cancellationToken);
                var counts = await database.HashGetAllAsync(KeyOf(BudgetWindow.Of(period, at))).WaitAsync(SharedRedis.LookupTimeout, cancellationToken);
                return counts.ToDictionary(c => LocalSpendLedger.KeyOf(c.Name!), c => (double)c.Value);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogUnavailable(logger, exception);
            }
        }

        return await _local.SpentAsync(period, at, cancellationToken);
    }

    /// <summary>Adds what this gateway spent, and has not yet added, to the shared count.</summary>
    private async Task SendAsync()
    {
        try
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            List<Task> sent = [];
            var batch = database.CreateBatch();
            while (_unsent.TryDequeue(out var spend))
            {
                foreach (var period in Enum.GetValues<BudgetPeriod>())
                {
                    var window = BudgetWindow.Of(period, spend.At);
                    sent.Add(batch.HashIncrementAsync(KeyOf(window), LocalSpendLedger.FieldOf(spend.Key), spend.Usd));
                    // Kept a while after the period ends, for a look back; no budget reads it then.
                    sent.Add(batch.KeyExpireAsync(KeyOf(window), window.End.AddDays(35).UtcDateTime));
                }
            }

            batch.Execute();
            await Task.WhenAll(sent);
        }
        catch (Exception exception)
        {
            // Not sent again: an increment that timed out may have been counted, and counting it twice is worse.
            LogUnavailable(logger, exception);
        }
    }

    private static RedisKey KeyOf(BudgetWindow window) => "claudeproxy:spend:" + window.Key;

    public ValueTask DisposeAsync() => _local.DisposeAsync();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis did not answer: budgets count this gateway's spend only until it does")]
    private static partial void LogUnavailable(ILogger logger, Exception exception);
}
