using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.Telemetry;

/// <summary>
/// The gateway's GenAI metrics, named and bucketed as the OpenTelemetry GenAI semantic conventions (v1.37 era)
/// say, for both backends: the front door as <c>gen_ai.server.*</c>, each backend call as <c>gen_ai.client.*</c>
/// with <c>gen_ai.provider.name</c> <c>anthropic</c> or <c>ollama</c>. Every number comes from a real measurement or
/// from what the backend reported; nothing is estimated. No per-conversation labels.
/// </summary>
public sealed class GenAiMetrics
{
    public const string MeterName = "ClaudeProxy";
    public const string Anthropic = "anthropic";
    public const string Ollama = "ollama";

    /// <summary>Distinct model label values kept before the rest become <c>_OTHER</c>: clients choose model names.</summary>
    private const int MaxModelLabels = 64;

    private static readonly double[] DurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly long[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
    private static readonly double[] FirstTokenBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
    private static readonly double[] PerTokenBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];

    private readonly ConcurrentDictionary<string, byte> _modelLabels = new(StringComparer.Ordinal);
    private readonly Histogram<double> _clientDuration;
    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<double> _clientFirstChunk;
    private readonly Histogram<double> _serverDuration;
    private readonly Histogram<double> _serverFirstToken;
    private readonly Histogram<double> _serverPerOutputToken;
    private readonly Counter<double> _costUsd;
    private readonly Counter<long> _tokens;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _disconnects;
    private readonly Counter<long> _fallbacks;

    public GenAiMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _clientDuration = meter.CreateHistogram("gen_ai.client.operation.duration", "s", "Duration of a GenAI operation as the backend client saw it.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _tokenUsage = meter.CreateHistogram("gen_ai.client.token.usage", "{token}", "Tokens used per operation, by gen_ai.token.type.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets });
        _clientFirstChunk = meter.CreateHistogram("gen_ai.client.operation.time_to_first_chunk", "s", "Time until the backend's first chunk, for streamed operations.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _serverDuration = meter.CreateHistogram("gen_ai.server.request.duration", "s", "Time from receiving a request to its last byte.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _serverFirstToken = meter.CreateHistogram("gen_ai.server.time_to_first_token", "s", "Time from receiving a request to forwarding its first token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = FirstTokenBuckets });
        _serverPerOutputToken = meter.CreateHistogram("gen_ai.server.time_per_output_token", "s", "Time per output token after the first.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = PerTokenBuckets });
        _costUsd = meter.CreateCounter<double>("claudeproxy.cost.usd", "{USD}", "Cost in US dollars as the Claude CLI computed it, by model.");
        _tokens = meter.CreateCounter<long>("claudeproxy.tokens", "{token}", "Tokens by type, including Claude's cache reads and writes (monotonic, for rate()).");
        _errors = meter.CreateCounter<long>("claudeproxy.errors", "{error}", "Failed requests, by error.type.");
        _disconnects = meter.CreateCounter<long>("claudeproxy.client.disconnects", "{request}", "Clients that left before the answer ended.");
        _fallbacks = meter.CreateCounter<long>("claudeproxy.fallbacks", "{request}", "Requests for a Claude model answered by its local fallback model, by reason.");
    }

    /// <summary>Counts a request for <paramref name="claudeModel"/> that <paramref name="fallbackModel"/> answered instead.</summary>
    public void RecordFallback(string claudeModel, string fallbackModel, string reason) =>
        _fallbacks.Add(1, new KeyValuePair<string, object?>("gen_ai.request.model", claudeModel),
            new KeyValuePair<string, object?>("claudeproxy.fallback_model", fallbackModel), new KeyValuePair<string, object?>("claudeproxy.fallback_reason", reason));

    /// <summary>Records one finished request: the front door's timings and, when the backend reported them, its own.</summary>
    public void Record(in GenAiObservation observation)
    {
        var tags = Tags(observation);
        _serverDuration.Record(observation.Duration.TotalSeconds, tags);
        if (observation.ErrorType is { } errorType)
        {
            _errors.Add(1, tags);
            if (errorType == GenAiObservation.Cancelled)
            {
                _disconnects.Add(1, tags);
            }

            return;
        }

        _clientDuration.Record((observation.BackendDuration ?? observation.Duration).TotalSeconds, tags);
        if (observation.BackendTimeToFirstChunk is { } backendFirst)
        {
            _clientFirstChunk.Record(backendFirst.TotalSeconds, tags);
        }

        if (observation.TimeToFirstToken is { } firstToken)
        {
            _serverFirstToken.Record(firstToken.TotalSeconds, tags);
            if (observation.OutputTokens is > 1 and var output)
            {
                _serverPerOutputToken.Record((observation.Duration - firstToken).TotalSeconds / (output - 1), tags);
            }
        }

        // The conventions say: no token usage when the counts are unknown.
        RecordTokens(observation.InputTokens, "input", tags);
        RecordTokens(observation.OutputTokens, "output", tags);
        if (observation.CacheReadTokens is > 0 and var cacheRead)
        {
            _tokens.Add(cacheRead, With(tags, "gen_ai.token.type", "cache_read"));
        }

        if (observation.CacheCreationTokens is > 0 and var cacheCreation)
        {
            _tokens.Add(cacheCreation, With(tags, "gen_ai.token.type", "cache_creation"));
        }

        if (observation.CostUsd is > 0 and var cost)
        {
            _costUsd.Add(cost, tags);
        }
    }

    private void RecordTokens(long? count, string type, TagList tags)
    {
        if (count is not { } value)
        {
            return;
        }

        var typed = With(tags, "gen_ai.token.type", type);
        _tokenUsage.Record(value, typed);
        _tokens.Add(value, typed);
    }

    private TagList Tags(in GenAiObservation observation)
    {
        var tags = new TagList
        {
            { "gen_ai.operation.name", observation.Operation },
            { "gen_ai.provider.name", observation.Provider },
            { "gen_ai.request.model", ModelLabel(observation.RequestModel) },
        };
        if (observation.ResponseModel is { } responseModel)
        {
            tags.Add("gen_ai.response.model", ModelLabel(responseModel));
        }

        if (observation.ErrorType is { } errorType)
        {
            tags.Add("error.type", errorType);
        }

        return tags;
    }

    private static TagList With(TagList tags, string key, string value)
    {
        var copy = tags;
        copy.Add(key, value);
        return copy;
    }

    private string ModelLabel(string? model)
    {
        if (string.IsNullOrEmpty(model))
        {
            return "_OTHER";
        }

        if (_modelLabels.ContainsKey(model) || (_modelLabels.Count < MaxModelLabels && _modelLabels.TryAdd(model, 0)))
        {
            return model;
        }

        return "_OTHER";
    }
}

/// <summary>One request as the metrics see it.</summary>
/// <param name="Operation">gen_ai.operation.name: <c>chat</c>, <c>text_completion</c>, <c>embeddings</c>.</param>
/// <param name="Provider">gen_ai.provider.name: <c>anthropic</c> or <c>ollama</c>.</param>
/// <param name="RequestModel">The model the client asked for.</param>
/// <param name="ResponseModel">The model that answered, when the backend said.</param>
/// <param name="Duration">Request received to last byte, measured by the gateway.</param>
/// <param name="TimeToFirstToken">Request received to the first token forwarded, for streamed answers.</param>
/// <param name="BackendDuration">The backend's own duration (the CLI's <c>duration_ms</c>), when it reports one.</param>
/// <param name="BackendTimeToFirstChunk">The backend's own time to first token, when it reports one.</param>
/// <param name="ErrorType">
/// Set when the request failed: <see cref="Cancelled"/> when the client left, <see cref="UpstreamUnreachable"/> and
/// <see cref="UpstreamInterrupted"/> when Ollama gave no answer or broke one off.
/// </param>
public readonly record struct GenAiObservation(
    string Operation,
    string Provider,
    string? RequestModel,
    string? ResponseModel,
    TimeSpan Duration,
    TimeSpan? TimeToFirstToken = null,
    long? InputTokens = null,
    long? OutputTokens = null,
    long? CacheReadTokens = null,
    long? CacheCreationTokens = null,
    double? CostUsd = null,
    TimeSpan? BackendDuration = null,
    TimeSpan? BackendTimeToFirstChunk = null,
    string? ErrorType = null)
{
    public const string Cancelled = "cancelled";
    public const string UpstreamUnreachable = "upstream_unreachable";
    public const string UpstreamInterrupted = "upstream_interrupted";
}

/// <summary>
/// Times one request from its arrival and records it exactly once, however it ends: completed, failed, or
/// abandoned by a client that went away.
/// </summary>
public sealed class GenAiRequestTimer(GenAiMetrics metrics, TimeProvider timeProvider, long startTimestamp, string operation, string provider, string? requestModel)
{
    private TimeSpan? _firstToken;
    private int _recorded;

    public TimeSpan Elapsed => timeProvider.GetElapsedTime(startTimestamp);

    /// <summary>Told what the request cost, in US dollars, when it completes with a cost (a Claude turn's budget).</summary>
    public Action<double>? OnCost { get; init; }

    /// <summary>Told the backend's error when a Claude turn fails with one (a usage limit, for the fallback).</summary>
    public Action<ClaudeBackendError>? OnBackendError { get; init; }

    /// <summary>Told the login's rate-limit state each time a Claude turn reports it (a subscription login does).</summary>
    public Action<ClaudeRateLimit>? OnRateLimit { get; init; }

    public void MarkFirstToken() => _firstToken ??= Elapsed;

    public void ReportRateLimit(ClaudeRateLimit rateLimit) => OnRateLimit?.Invoke(rateLimit);

    public void Complete(long? inputTokens, long? outputTokens, string? responseModel, long? cacheRead = null, long? cacheCreation = null,
        double? costUsd = null, TimeSpan? backendDuration = null, TimeSpan? backendFirstChunk = null)
    {
        if (Interlocked.Exchange(ref _recorded, 1) == 0)
        {
            metrics.Record(new GenAiObservation(operation, provider, requestModel, responseModel, Elapsed, _firstToken,
                inputTokens, outputTokens, cacheRead, cacheCreation, costUsd, backendDuration, backendFirstChunk));
            if (costUsd is > 0 and var cost)
            {
                OnCost?.Invoke(cost);
            }
        }
    }

    /// <summary>Records a Claude turn that failed with the backend's <paramref name="error"/>.</summary>
    public void Fail(ClaudeBackendError error)
    {
        if (Volatile.Read(ref _recorded) == 0)
        {
            if (error.RateLimit is { } rateLimit)
            {
                // A turn that failed before its answer had no events: its error carries the login's state.
                ReportRateLimit(rateLimit);
            }

            OnBackendError?.Invoke(error);
        }

        Fail(ErrorEnvelopes.CodeOf(error.Kind));
    }

    public void Fail(string errorType, string? responseModel = null)
    {
        if (Interlocked.Exchange(ref _recorded, 1) == 0)
        {
            metrics.Record(new GenAiObservation(operation, provider, requestModel, responseModel, Elapsed, ErrorType: errorType));
        }
    }
}
