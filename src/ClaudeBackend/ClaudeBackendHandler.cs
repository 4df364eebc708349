using System.Net;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The claude backend as a YARP destination: <c>POST /v1/turns</c> runs a turn on the <see cref="IClaudeBackend"/>. In
/// process the request transform hands the turn over typed (<see cref="ClaudeBackendContract.TurnRequest"/>) and gets
/// the typed events back (<see cref="ClaudeTurnContent"/>); a request with a JSON body, as bytes from a socket bring it,
/// gets the NDJSON answer. A turn that fails before the model answers gets its error status either way.
/// </summary>
public sealed class ClaudeBackendHandler(IClaudeBackend backend) : HttpMessageHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Method != HttpMethod.Post || request.RequestUri?.AbsolutePath != ClaudeBackendPaths.Turns)
        {
            var wrongPath = new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, $"The claude backend serves only POST {ClaudeBackendPaths.Turns}.");
            return new HttpResponseMessage(HttpStatusCode.NotFound) { Content = ClaudeBackendContract.ErrorContent(wrongPath), RequestMessage = request };
        }

        var typed = request.Options.TryGetValue(ClaudeBackendContract.TurnRequest, out var turnRequest);
        if (!typed)
        {
            // YARP's request content cannot be read as a stream (it throws); read it whole.
            var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
            turnRequest = ClaudeBackendContract.ParseRequest(body, out var invalid);
            if (turnRequest is null)
            {
                return Answer(request, ClaudeTurnEvents.Failed(invalid!), typed);
            }
        }

        return Answer(request, await backend.StartTurnAsync(turnRequest!, cancellationToken), typed);
    }

    private static HttpResponseMessage Answer(HttpRequestMessage request, IClaudeTurnEvents events, bool typed)
    {
        var error = events.FailedBeforeAnswer;
        var response = new HttpResponseMessage(error?.StatusCode ?? HttpStatusCode.OK)
        {
            RequestMessage = request,
            Content = typed ? new ClaudeTurnContent(events)
                : error is not null ? ClaudeBackendContract.ErrorContent(error)
                : new StreamContent(new ClaudeEventLineStream(events)) { Headers = { ContentType = new(ClaudeBackendContract.EventsMediaType) } },
        };
        if (error?.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(seconds));
        }

        return response;
    }
}
