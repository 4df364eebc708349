using System.Net;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>What went wrong, in terms a dialect can map to its own error envelope.</summary>
public enum ClaudeErrorKind
{
    InvalidRequest,
    Authentication,
    PermissionDenied,
    ModelNotFound,
    RateLimited,
    Overloaded,
    Busy,
    RequestTooLarge,
    Timeout,
    CliUnavailable,
    CliFailed,
    UpstreamError,

    /// <summary>The model's answer does not match the output schema the client asked for.</summary>
    InvalidOutput,
}

/// <summary>
/// A failed turn: the <see cref="StreamJson.TurnFailed"/> event that ends it and, when it failed before the model
/// answered, the status the client gets.
/// </summary>
/// <param name="RateLimit">A rate-limited turn's last reported rate-limit state (a subscription at its limit): the error
/// carries it because a turn that fails before its answer gets no events to the client.</param>
public sealed record ClaudeBackendError(ClaudeErrorKind Kind, string Message, int? RetryAfterSeconds = null, ClaudeRateLimit? RateLimit = null)
{
    public HttpStatusCode StatusCode => Kind switch
    {
        ClaudeErrorKind.InvalidRequest => HttpStatusCode.BadRequest,
        ClaudeErrorKind.Authentication => HttpStatusCode.Unauthorized,
        ClaudeErrorKind.PermissionDenied => HttpStatusCode.Forbidden,
        ClaudeErrorKind.ModelNotFound => HttpStatusCode.NotFound,
        ClaudeErrorKind.RateLimited => HttpStatusCode.TooManyRequests,
        ClaudeErrorKind.RequestTooLarge => HttpStatusCode.RequestEntityTooLarge,
        ClaudeErrorKind.Overloaded or ClaudeErrorKind.Busy or ClaudeErrorKind.CliUnavailable => HttpStatusCode.ServiceUnavailable,
        ClaudeErrorKind.Timeout => HttpStatusCode.GatewayTimeout,
        ClaudeErrorKind.InvalidOutput => HttpStatusCode.UnprocessableEntity,
        _ => HttpStatusCode.BadGateway,
    };

    /// <summary>The kind a backend response status stands for, when the body could not be read.</summary>
    public static ClaudeErrorKind KindOf(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => ClaudeErrorKind.InvalidRequest,
        HttpStatusCode.Unauthorized => ClaudeErrorKind.Authentication,
        HttpStatusCode.Forbidden => ClaudeErrorKind.PermissionDenied,
        HttpStatusCode.NotFound => ClaudeErrorKind.ModelNotFound,
        HttpStatusCode.TooManyRequests => ClaudeErrorKind.RateLimited,
        HttpStatusCode.RequestEntityTooLarge => ClaudeErrorKind.RequestTooLarge,
        HttpStatusCode.ServiceUnavailable => ClaudeErrorKind.Overloaded,
        HttpStatusCode.GatewayTimeout => ClaudeErrorKind.Timeout,
        HttpStatusCode.UnprocessableEntity => ClaudeErrorKind.InvalidOutput,
        _ => ClaudeErrorKind.UpstreamError,
    };
}

/// <summary>The body of a non-2xx answer in the contract's serialized form.</summary>
public sealed record ClaudeBackendErrorBody(ClaudeBackendError Error);
