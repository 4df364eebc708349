using System.Net;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms.Anthropic;
using ClaudeProxy.Transforms.Ollama;
using ClaudeProxy.Transforms.OpenAi;
using Microsoft.AspNetCore.Http;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The error envelopes clients understand: Ollama's <c>{"error":"…"}</c>, OpenAI's error object, and Anthropic's
/// <c>{"type":"error","error":{"type","message"}}</c>.
/// </summary>
public enum ErrorStyle
{
    Ollama,
    OpenAi,
    Anthropic,
}

public static class ErrorEnvelopes
{
    public const string JsonContentType = "application/json; charset=utf-8";

    /// <summary>The header the OpenAI and Anthropic SDKs read before they retry an error (<c>false</c>: do not).</summary>
    public const string ShouldRetryHeader = "x-should-retry";

    public static byte[] Create(ErrorStyle style, HttpStatusCode status, string message, string? code = null, string? param = null) => style switch
    {
        ErrorStyle.OpenAi => JsonOutput.ToBytes(
            new OpenAiErrorBody(new OpenAiError(message, OpenAiErrorType(status), param, code)),
            DialectJsonContext.Default.OpenAiErrorBody),
        ErrorStyle.Anthropic => JsonOutput.ToBytes(
            new AnthropicErrorBody(new AnthropicError(AnthropicErrorType(status), message)),
            DialectJsonContext.Default.AnthropicErrorBody),
        _ => JsonOutput.ToBytes(new OllamaError(message), DialectJsonContext.Default.OllamaError),
    };

    internal static byte[] Create(ErrorStyle style, ClaudeBackendError error) =>
        Create(style, StatusOf(style, error), error.Message, CodeOf(error.Kind));

    /// <summary>
    /// The status a backend error gets in the client's dialect: Anthropic's clients know an overloaded API as 529 (and
    /// retry it), the others as 503.
    /// </summary>
    public static HttpStatusCode StatusOf(ErrorStyle style, ClaudeBackendError error) =>
        style == ErrorStyle.Anthropic && error.Kind == ClaudeErrorKind.Overloaded ? (HttpStatusCode)529 : error.StatusCode;

    /// <summary>Answers the request with an error in the client's envelope.</summary>
    public static Task WriteAsync(HttpResponse response, ErrorStyle style, HttpStatusCode status, string message, CancellationToken cancellationToken, string? param = null, string? code = null) =>
        WriteAsync(response, status, Create(style, status, message, code, param), cancellationToken);

    /// <summary>Answers the request with a backend error (its status, and its code for OpenAI clients) in the client's envelope.</summary>
    public static Task WriteAsync(HttpResponse response, ErrorStyle style, ClaudeBackendError error, CancellationToken cancellationToken) =>
        WriteAsync(response, StatusOf(style, error), Create(style, error), cancellationToken);

    private static async Task WriteAsync(HttpResponse response, HttpStatusCode status, byte[] body, CancellationToken cancellationToken)
    {
        response.StatusCode = (int)status;
        response.ContentType = JsonContentType;
        await response.Body.WriteAsync(body, cancellationToken);
    }

    /// <summary>snake_case of the kind, e.g. <c>rate_limited</c>: a stable code clients can branch on.</summary>
    internal static string CodeOf(ClaudeErrorKind kind) =>
        System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(kind.ToString());

    /// <summary>The <c>error.type</c> the Anthropic SDKs map to their exception classes.</summary>
    private static string AnthropicErrorType(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => "invalid_request_error",
        HttpStatusCode.Unauthorized => "authentication_error",
        HttpStatusCode.Forbidden => "permission_error",
        HttpStatusCode.NotFound => "not_found_error",
        HttpStatusCode.RequestEntityTooLarge => "request_too_large",
        HttpStatusCode.TooManyRequests => "rate_limit_error",
        HttpStatusCode.ServiceUnavailable or (HttpStatusCode)529 => "overloaded_error",
        _ => "api_error",
    };

    private static string OpenAiErrorType(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge => "invalid_request_error",
        HttpStatusCode.Unauthorized => "authentication_error",
        HttpStatusCode.Forbidden => "permission_error",
        HttpStatusCode.NotFound => "not_found_error",
        HttpStatusCode.TooManyRequests => "rate_limit_error",
        _ => "api_error",
    };
}
