using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.Transforms.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace ClaudeProxy.Transforms.Yarp;

/// <summary>
/// Adds the dialect transforms to every route whose metadata names a <c>ClaudeDialect</c>. They act only when the
/// request was routed to a cluster whose metadata says <c>Backend: claude-cli</c>; traffic for any other cluster
/// passes untouched.
/// </summary>
public sealed class ClaudeTransformProvider(
    DialectServices services,
    IOptions<ClaudeBackendOptions> backendOptions,
    IOptions<DialectOptions> dialectOptions) : ITransformProvider
{
    public const string DialectMetadataKey = "ClaudeDialect";
    public const string BackendMetadataKey = "Backend";
    public const string ClaudeBackendName = "claude-cli";

    /// <summary>The header in which Open WebUI sends the id of its chat.</summary>
    public const string OpenWebUiChatIdHeader = "X-OpenWebUI-Chat-Id";

    public void ValidateRoute(TransformRouteValidationContext context)
    {
        if (context.Route.Metadata?.TryGetValue(DialectMetadataKey, out var name) == true && !ClaudeDialects.TryGet(name, out _))
        {
            context.Errors.Add(new ArgumentException($"Route '{context.Route.RouteId}' names an unknown {DialectMetadataKey} '{name}'."));
        }
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        if (context.Route.Metadata?.TryGetValue(DialectMetadataKey, out var name) != true || !ClaudeDialects.TryGet(name, out var dialect))
        {
            return;
        }

        context.AddRequestTransform(transform => TransformRequestAsync(transform, dialect));
        context.AddResponseTransform(TransformResponseAsync);
    }

    /// <summary>Whether the request goes to the claude backend (the model routing chose its cluster).</summary>
    public static bool IsClaudeCluster(ClusterModel? cluster) =>
        cluster?.Config.Metadata?.TryGetValue(BackendMetadataKey, out var backend) == true && backend == ClaudeBackendName;

    private async ValueTask TransformRequestAsync(RequestTransformContext context, ClaudeDialect dialect)
    {
        var httpContext = context.HttpContext;
        if (!IsClaudeCluster(httpContext.Features.Get<IReverseProxyFeature>()?.Cluster))
        {
            return;
        }

        var started = services.TimeProvider.GetTimestamp();
        var body = await ReadBodyAsync(httpContext.Request, context.CancellationToken);
        DialectRequest? request;
        byte[]? immediateAnswer;
        try
        {
            request = dialect.Parse(body, services.TimeProvider, out immediateAnswer);
        }
        catch (Exception exception) when (exception is DialectRequestException or InvalidOperationException or NullReferenceException)
        {
            // Writing the response here ends the proxying: nothing is forwarded. (A string that is not valid UTF-8
            // surfaces as InvalidOperationException when a codec reads it; a null where the wire records hold a value,
            // such as an array's item, which System.Text.Json lets through, as NullReferenceException when one reads it.)
            var status = (exception as DialectRequestException)?.Status ?? HttpStatusCode.BadRequest;
            var message = exception is NullReferenceException ? "the request has null where a value belongs (an item of an array?)" : exception.Message;
            await ErrorEnvelopes.WriteAsync(httpContext.Response, dialect.ErrorStyle, status, message, context.CancellationToken, (exception as DialectRequestException)?.Param);
            return;
        }

        if (request is { Ignored: [var first, ..] ignored } && dialectOptions.Value.RefuseIgnoredFields)
        {
            await ErrorEnvelopes.WriteAsync(httpContext.Response, dialect.ErrorStyle, HttpStatusCode.BadRequest,
                $"{string.Join(", ", ignored.Select(f => $"'{f}'"))}: the Claude CLI cannot pass {(ignored.Count == 1 ? "this field" : "these fields")} to the model, and this gateway refuses what it would ignore",
                context.CancellationToken, first);
            return;
        }

        if (request is null)
        {
            httpContext.Response.StatusCode = StatusCodes.Status200OK;
            httpContext.Response.ContentType = ErrorEnvelopes.JsonContentType;
            await httpContext.Response.Body.WriteAsync(immediateAnswer, context.CancellationToken);
            return;
        }

        request = request with
        {
            Turn = request.Turn with
            {
                Owner = ClaudeCallerClaims.Owner(httpContext.User),
                AllowedTools = ClaudeCallerClaims.AllowedTools(httpContext.User),
                // Open WebUI names its chat in a header (with ENABLE_FORWARD_USER_INFO_HEADERS). It is not taken as an id
                // that would send only the last message: Open WebUI sends the whole history, regenerates and edits
                // within one chat, and tags its title and tag requests with the same chat id.
                ClientChatId = httpContext.Request.Headers[OpenWebUiChatIdHeader].ToString() is { Length: > 0 } chatId ? chatId : null,
            },
        };
        try
        {
            request = await dialect.WithCallerAsync(request, services, context.CancellationToken);
        }
        catch (DialectRequestException exception)
        {
            await ErrorEnvelopes.WriteAsync(httpContext.Response, dialect.ErrorStyle, exception.Status, exception.Message, context.CancellationToken);
            return;
        }

        if (backendOptions.Value.SerializedHop)
        {
            // The turn as bytes, exactly as a worker behind a socket gets it.
            var turn = ClaudeBackendContract.Serialize(request.Turn);
            httpContext.Request.Body = new MemoryStream(turn);
            httpContext.Request.ContentLength = turn.Length;
            SetContentHeaders(context.ProxyRequest.Content, turn.Length, "application/json");
        }
        else
        {
            // In process the turn goes over as it is; the destination reads no body.
            context.ProxyRequest.Options.Set(ClaudeBackendContract.TurnRequest, request.Turn);
            httpContext.Request.Body = Stream.Null;
            httpContext.Request.ContentLength = 0;
            SetContentHeaders(context.ProxyRequest.Content, 0, null);
        }

        context.Path = ClaudeBackendPaths.Turns;
        context.Query.Collection.Clear();
        httpContext.Features.Set(new ClaudeTurnFeature(dialect, request, dialect.CreateWriter(request, services, started)));
    }

    private static async ValueTask TransformResponseAsync(ResponseTransformContext context)
    {
        if (context.HttpContext.Features.Get<ClaudeTurnFeature>() is not { } turn)
        {
            return;
        }

        var response = context.HttpContext.Response;
        if (turn.Request.Ignored is { Count: > 0 } ignored)
        {
            response.Headers[RequestFields.IgnoredHeader] = string.Join(',', ignored);
        }

        var style = turn.Dialect.ErrorStyle;
        var timer = context.HttpContext.Features.Get<GenAiRequestTimer>();
        if (context.ProxyResponse is not { } backendResponse)
        {
            // The backend could not be reached at all: the gateway's error-envelope middleware answers.
            return;
        }

        var events = await ClaudeBackendContract.ReadEventsAsync(backendResponse, context.CancellationToken);
        if (events.FailedBeforeAnswer is { } error)
        {
            await events.DisposeAsync();
            if (error.Kind == ClaudeErrorKind.CliUnavailable)
            {
                // The OpenAI SDKs retry 5xx twice unless told not to; a missing CLI will not appear between tries.
                response.Headers[ErrorEnvelopes.ShouldRetryHeader] = "false";
            }

            timer?.Fail(error);
            response.StatusCode = (int)ErrorEnvelopes.StatusOf(style, error);
            ReplaceBody(context, ErrorEnvelopes.Create(style, error));
            return;
        }

        if (turn.Request.Stream)
        {
            backendResponse.Content = new StreamContent(new ClaudeAnswerStream(events, turn.Writer, timer));
            response.ContentType = turn.Dialect.StreamContentType;
            response.ContentLength = null;
            response.Headers.CacheControl = "no-cache";
            // Reverse proxies in front of the gateway (nginx) must not hold the stream back either.
            response.Headers["X-Accel-Buffering"] = "no";
            return;
        }

        await using (events)
        {
            try
            {
                var (status, answer) = await AggregateAsync(events, turn, timer, context.CancellationToken);
                response.StatusCode = (int)status;
                ReplaceBody(context, answer);
            }
            catch (OperationCanceledException)
            {
                timer?.Fail(GenAiObservation.Cancelled);
                throw;
            }
        }
    }

    /// <summary>For <c>stream:false</c>: reads the whole turn, then answers one body with the right status.</summary>
    private static async Task<(HttpStatusCode Status, byte[] Body)> AggregateAsync(
        IClaudeTurnEvents events, ClaudeTurnFeature turn, GenAiRequestTimer? timer, CancellationToken cancellationToken)
    {
        var thinking = new System.Text.StringBuilder();
        List<ClaudeStreamEvent> batch = [];
        while (await events.ReadAsync(batch, cancellationToken))
        {
            foreach (var streamEvent in batch)
            {
                timer.Observe(streamEvent);
                switch (streamEvent)
                {
                    case ThinkingDelta delta:
                        if (turn.Request.ShowThinking)
                        {
                            thinking.Append(delta.Text);
                        }
                        break;
                    case TurnCompleted completed:
                        var output = new ArrayBufferWriter<byte>();
                        turn.Writer.WriteAnswer(completed.Result, thinking.ToString(), output);
                        return (HttpStatusCode.OK, output.WrittenSpan.ToArray());
                    case TurnFailed failed:
                        return (ErrorEnvelopes.StatusOf(turn.Dialect.ErrorStyle, failed.Error), ErrorEnvelopes.Create(turn.Dialect.ErrorStyle, failed.Error));
                }
            }
        }

        throw new UnreachableException("The event reader always ends with an outcome.");
    }

    private static void SetContentHeaders(HttpContent? content, long length, string? mediaType)
    {
        if (content is not null)
        {
            content.Headers.ContentLength = length;
            content.Headers.ContentType = mediaType is null ? null : new MediaTypeHeaderValue(mediaType);
        }
    }

    private static void ReplaceBody(ResponseTransformContext context, byte[] body)
    {
        // YARP copied the backend's headers before this transform ran: fix the ones that describe the body.
        context.ProxyResponse!.Content = new ByteArrayContent(body);
        context.HttpContext.Response.ContentType = ErrorEnvelopes.JsonContentType;
        context.HttpContext.Response.ContentLength = body.Length;
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.Body.CanSeek)
        {
            request.Body.Position = 0;
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    private sealed record ClaudeTurnFeature(ClaudeDialect Dialect, DialectRequest Request, AnswerWriter Writer);
}
