using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Gateway.Budgets;
using ClaudeProxy.Gateway.Ollama;
using ClaudeProxy.Transforms;
using ClaudeProxy.Transforms.Anthropic;
using ClaudeProxy.Transforms.Telemetry;
using ClaudeProxy.Transforms.Yarp;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace ClaudeProxy.Gateway.ModelRouting;

/// <summary>
/// Chooses the backend of a model-bearing request (routes with <c>ModelRouting</c> metadata). On a Claude route (one
/// with a <c>ClaudeDialect</c>) a Claude model stays and any other model moves to the <c>ollama</c> cluster; on an
/// Ollama route a Claude model gets the route's <c>ClaudeModelAnswer</c> and any other model goes on to Ollama.
/// With no Ollama configured, a model nobody serves is answered "not found".
/// </summary>
internal sealed partial class ModelRoutingMiddleware(
    RequestDelegate next,
    IProxyStateLookup proxyState,
    ClaudeModelCatalog catalog,
    OllamaUpstream ollama,
    TimeProvider timeProvider,
    GenAiMetrics metrics,
    ClaudeBudgets budgets,
    ClaudeUsageLimit usageLimit,
    IOptions<GatewayOptions> options,
    ILogger<ModelRoutingMiddleware> logger)
{
    /// <summary>Names the local model that answered in a Claude model's place, and why: <c>llama3.2:3b; reason=budget</c>.</summary>
    public const string FallbackHeader = "x-claudeproxy-fallback";

    /// <summary>Names the model that answered a background task (<see cref="BackgroundTask"/>) in the requested one's place.</summary>
    public const string TaskModelHeader = "x-claudeproxy-task-model";

    /// <summary>OpenAI's code for a spent quota.</summary>
    public const string BudgetSpentCode = "insufficient_quota";

    /// <remarks>
    /// Not async: a model that is not Claude's, read from a body that has arrived (the Ollama pass-through, the common
    /// case), goes on to Ollama without a state machine or an await of this middleware's own.
    /// </remarks>
    public Task InvokeAsync(HttpContext context)
    {
        var started = timeProvider.GetTimestamp();
        var metadata = context.GetReverseProxyFeature().Route.Config.Metadata;
        if (metadata?.ContainsKey(RouteMetadata.UnlimitedRequestBody) == true
            && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Model blobs (GGUF files) are gigabytes; they stream to Ollama and are never read here.
            bodyLimit.MaxRequestBodySize = null;
        }

        if (metadata is null || !metadata.TryGetValue(RouteMetadata.ModelRouting, out var routing))
        {
            return next(context);
        }

        if (routing == "path")
        {
            return RouteAsync(context, metadata, started, context.GetRouteValue("model") as string);
        }

        var read = ReadBodyModelAsync(context, RouteMetadata.ModelPropertiesOf(metadata));
        return read.IsCompletedSuccessfully ? RouteAsync(context, metadata, started, read.Result) : RouteWhenReadAsync(context, metadata, started, read);
    }

    /// <remarks>A body Kestrel refuses (most often 413, over the limit) throws: <see cref="ErrorEnvelopeMiddleware"/> answers its status.</remarks>
    private async Task RouteWhenReadAsync(HttpContext context, IReadOnlyDictionary<string, string> metadata, long started, ValueTask<string?> read) =>
        await RouteAsync(context, metadata, started, await read);

    private Task RouteAsync(HttpContext context, IReadOnlyDictionary<string, string> metadata, long started, string? model)
    {
        var isClaude = catalog.TryFind(model, out var claudeModel);
        if (metadata.ContainsKey(RouteMetadata.DialectKey))
        {
            if (isClaude)
            {
                return RouteClaudeTurnAsync(context, metadata, started, model!, claudeModel!);
            }

            if (model is null)
            {
                // A body without a readable model stays on the claude cluster: the dialect transform answers a
                // malformed request in the client's own terms.
                Measure(context, metadata, started, GenAiMetrics.Anthropic, model: null);
                return next(context);
            }

            return ToOllamaAsync(context, metadata, started, model) ?? NotFoundAsync(context, metadata, model);
        }

        if (isClaude)
        {
            return AnswerForClaudeModelAsync(context, metadata.GetValueOrDefault(RouteMetadata.ClaudeModelAnswer), claudeModel!, model!, RouteMetadata.ErrorStyleOf(metadata));
        }

        return ToOllamaAsync(context, metadata, started, model)
            ?? (model is null
                ? ErrorEnvelopes.WriteAsync(context.Response, RouteMetadata.ErrorStyleOf(metadata), HttpStatusCode.BadRequest, "model is required", context.RequestAborted)
                : NotFoundAsync(context, metadata, model));
    }

    /// <summary>
    /// Sends the request on to Ollama (a dialect's route, which points at the claude cluster, moves to Ollama's); null,
    /// and nothing sent, when no Ollama is configured or its cluster is not in YARP's state.
    /// </summary>
    private Task? ToOllamaAsync(HttpContext context, IReadOnlyDictionary<string, string> metadata, long started, string? model)
    {
        if (!ollama.IsConfigured)
        {
            return null;
        }

        if (metadata.ContainsKey(RouteMetadata.DialectKey))
        {
            if (!proxyState.TryGetCluster(OllamaClusterConfigFilter.ClusterId, out var ollamaCluster))
            {
                return null;
            }

            context.ReassignProxyRequest(ollamaCluster);
        }

        Measure(context, metadata, started, GenAiMetrics.Ollama, model);
        return next(context);
    }

    /// <summary>A Claude model on a dialect's route: the rules that look inside (a task's template, budgets, a model swap), then the turn.</summary>
    private async Task RouteClaudeTurnAsync(HttpContext context, IReadOnlyDictionary<string, string> metadata, long started, string model, ClaudeModelOptions requested)
    {
        // The rules below may read the body, and the dialect reads it again.
        context.Request.EnableBuffering();
        var style = RouteMetadata.ErrorStyleOf(metadata);
        ClaudeModelOptions? claudeModel = requested;
        var isClaude = true;

        // Parsed only when a rule needs to look inside: a task's template, a budget's continued turn, a model swap.
        JsonObject? body = null;
        if (requested.TaskModel is { Length: > 0 } taskModel && (body ??= await ReadJsonAsync(context)) is { } task && BackgroundTask.IsOne(task))
        {
            // A title, tags or follow-ups for Open WebUI: the cheaper model answers, whichever backend serves it.
            SwapModel(context, task, taskModel);
            context.Response.Headers[TaskModelHeader] = taskModel;
            model = taskModel;
            isClaude = catalog.TryFind(model, out claudeModel);
        }

        var spent = isClaude ? await budgets.FindSpentAsync(ClaudeCallerClaims.Owner(context.User), context.RequestAborted) : null;
        var limited = isClaude && usageLimit.LimitedUntil is not null;
        if ((spent is not null || limited) && (body ??= await ReadJsonAsync(context)) is { } results && BackgroundTask.ContinuesATurn(results))
        {
            // The results a running turn waits on: it is never cut.
            (spent, limited) = (null, false);
        }

        // A spent budget, or a login at its usage limit (which the CLI would only refuse), sends a Claude
        // model's request to its local fallback when it has one.
        var fallbackReason = spent is not null ? "budget" : limited ? "usage_limit" : null;
        if (fallbackReason is not null && claudeModel!.FallbackModel is { Length: > 0 })
        {
            body ??= await ReadJsonAsync(context);
        }

        if (fallbackReason is not null && claudeModel!.FallbackModel is { Length: > 0 } fallback && body is not null
            && ollama.IsConfigured && proxyState.TryGetCluster(OllamaClusterConfigFilter.ClusterId, out var fallbackCluster))
        {
            // Answered by the local model instead, forwarded like any Ollama request, and said so.
            SwapModel(context, body, fallback);
            context.ReassignProxyRequest(fallbackCluster);
            context.Response.Headers[FallbackHeader] = $"{fallback}; reason={fallbackReason}";
            metrics.RecordFallback(claudeModel.Name, fallback, fallbackReason);
            Measure(context, metadata, started, GenAiMetrics.Ollama, fallback);
            await next(context);
        }
        else if (spent is not null)
        {
            LogBudgetSpent(logger, spent.Budget);
            context.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling((spent.ResetsAt - timeProvider.GetUtcNow()).TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            // The OpenAI and Anthropic SDKs retry a 429 unless told not to; a budget comes back at its reset, not in seconds.
            context.Response.Headers[ErrorEnvelopes.ShouldRetryHeader] = "false";
            await ErrorEnvelopes.WriteAsync(context.Response, style, HttpStatusCode.TooManyRequests, spent.Message, context.RequestAborted, code: BudgetSpentCode);
        }
        else if (isClaude)
        {
            Measure(context, metadata, started, GenAiMetrics.Anthropic, model, claudeModel!.Name);
            await next(context);
        }
        else
        {
            // A task model that is not Claude's.
            await (ToOllamaAsync(context, metadata, started, model) ?? NotFoundAsync(context, metadata, model));
        }
    }

    /// <summary>
    /// Starts the GenAI metrics of a request on a route that names its operation; a Claude turn's cost counts against
    /// the budgets of <paramref name="budgetModel"/> and the caller's key.
    /// </summary>
    private void Measure(HttpContext context, IReadOnlyDictionary<string, string> metadata, long started, string provider, string? model, string? budgetModel = null)
    {
        if (metadata.TryGetValue(OllamaUsageTransformProvider.OperationMetadataKey, out var operation))
        {
            context.Features.Set(budgetModel is null
                ? new GenAiRequestTimer(metrics, timeProvider, started, operation, provider, model)
                : BudgetedTimer(context, started, operation, provider, model, budgetModel));
        }
    }

    /// <remarks>Apart from <see cref="Measure"/>, so that a request without a budget (Ollama's) pays for no closure and no caller.</remarks>
    private GenAiRequestTimer BudgetedTimer(HttpContext context, long started, string operation, string provider, string? model, string budgetModel)
    {
        var caller = ClaudeCallerClaims.Owner(context.User);
        return new GenAiRequestTimer(metrics, timeProvider, started, operation, provider, model)
        {
            OnCost = cost =>
            {
                budgets.Record(caller, budgetModel, cost);
                usageLimit.Lift();
            },
            OnBackendError = usageLimit.Observe,
            // The login is the destination's: this gateway's own CLI, or a worker with a login of its own.
            OnRateLimit = rateLimit => usageLimit.Observe(context.GetReverseProxyFeature().ProxiedDestination?.DestinationId ?? "cli", rateLimit),
        };
    }

    /// <summary>The (buffered) body as a JSON object; null when it is not one, which the dialect answers.</summary>
    /// <exception cref="BadHttpRequestException">The body is over the size limit.</exception>
    private static async Task<JsonObject?> ReadJsonAsync(HttpContext context)
    {
        context.Request.Body.Position = 0;
        try
        {
            return await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
        finally
        {
            context.Request.Body.Position = 0;
        }
    }

    /// <summary>Sends <paramref name="body"/> on with <paramref name="model"/> in place of the model it names.</summary>
    private static void SwapModel(HttpContext context, JsonObject body, string model)
    {
        body["model"] = model;
        var swapped = new MemoryStream(Encoding.UTF8.GetBytes(body.ToJsonString()));
        (context.Request.Body, context.Request.ContentLength) = (swapped, swapped.Length);
    }

    private async ValueTask<string?> ReadBodyModelAsync(HttpContext context, IReadOnlyList<string> properties)
    {
        // Peeked at in the body's pipe, which the forwarder then reads from its start: a request on its way to Ollama
        // whose model has arrived (nearly always, all of a small body has) is neither copied nor buffered.
        var maxBytes = options.Value.MaxModelScanBytes;
        var reader = context.Request.BodyReader;
        var (decided, model) = await RequestModelReader.PeekAsync(reader, properties, maxBytes, context.RequestAborted);
        // Read on through the reader the model was peeked from: over a body that another layer set, the reader is an
        // adapter that now holds the bytes it peeked. (Unlike Kestrel's own body stream, this one does not refuse a
        // synchronous read; nothing here reads one.)
        context.Request.Body = reader.AsStream(leaveOpen: true);
        if (decided)
        {
            return model;
        }

        // Further in than had arrived (a model after a large messages array, a body still on its way): buffer the
        // body, read it, and rewind it for the forwarder.
        context.Request.EnableBuffering();
        model = await RequestModelReader.ReadAsync(context.Request.Body, properties, maxBytes, context.RequestAborted);
        context.Request.Body.Position = 0;
        return model;
    }

    private async Task AnswerForClaudeModelAsync(HttpContext context, string? answer, ClaudeModelOptions model, string requestedName, ErrorStyle style)
    {
        var response = context.Response;
        var now = timeProvider.GetUtcNow();
        switch (answer)
        {
            case "show":
                await WriteJsonAsync(response, ModelLists.OllamaShow(model, now), context.RequestAborted);
                break;
            case "openai-model":
                // The Anthropic SDKs ask for one model on the same path, with anthropic-version.
                await WriteJsonAsync(
                    response,
                    context.Request.Headers.ContainsKey(ModelLists.AnthropicVersionHeader) ? ModelLists.AnthropicModel(requestedName, now) : ModelLists.OpenAiModel(requestedName, now),
                    context.RequestAborted);
                break;
            case "anthropic-count-tokens":
                using (var body = new MemoryStream())
                {
                    await context.Request.Body.CopyToAsync(body, context.RequestAborted);
                    if (AnthropicTokenEstimate.Answer(body.ToArray()) is { } count)
                    {
                        response.Headers[AnthropicTokenEstimate.Header] = AnthropicTokenEstimate.HeaderValue;
                        await WriteJsonAsync(response, count, context.RequestAborted);
                    }
                    else
                    {
                        await ErrorEnvelopes.WriteAsync(response, style, HttpStatusCode.BadRequest, "the body must be a JSON object", context.RequestAborted);
                    }
                }

                break;
            case "pull":
                using (var body = new MemoryStream())
                {
                    await context.Request.Body.CopyToAsync(body, context.RequestAborted);
                    var stream = ModelLists.WantsStream(body.ToArray());
                    response.ContentType = stream ? "application/x-ndjson" : ErrorEnvelopes.JsonContentType;
                    await response.Body.WriteAsync(ModelLists.OllamaPullSuccess(stream), context.RequestAborted);
                }

                break;
            default:
                var reason = answer is not null && answer.StartsWith("error:", StringComparison.Ordinal) ? answer["error:".Length..] : "is a Claude model served by ClaudeProxy";
                await ErrorEnvelopes.WriteAsync(response, style, HttpStatusCode.BadRequest, $"\"{requestedName}\" {reason}", context.RequestAborted);
                break;
        }
    }

    private Task NotFoundAsync(HttpContext context, IReadOnlyDictionary<string, string> metadata, string model)
    {
        LogUnknownModel(logger, model);
        var error = new ClaudeBackendError(ClaudeErrorKind.ModelNotFound, $"model '{model}' not found");
        return ErrorEnvelopes.WriteAsync(context.Response, RouteMetadata.ErrorStyleOf(metadata), error, context.RequestAborted);
    }

    private static async Task WriteJsonAsync(HttpResponse response, byte[] body, CancellationToken cancellationToken)
    {
        response.ContentType = ErrorEnvelopes.JsonContentType;
        await response.Body.WriteAsync(body, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A Claude turn was refused: the {Budget} budget is spent")]
    private static partial void LogBudgetSpent(ILogger logger, string budget);

    [LoggerMessage(Level = LogLevel.Information, Message = "No backend serves model '{Model}'")]
    private static partial void LogUnknownModel(ILogger logger, string model);
}
