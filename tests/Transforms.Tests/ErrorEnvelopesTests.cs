using System.Net;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.Tests;

public sealed class ErrorEnvelopesTests
{
    [Fact]
    public void Ollama_clients_get_a_plain_error_string()
    {
        var body = JsonDocument.Parse(ErrorEnvelopes.Create(ErrorStyle.Ollama, HttpStatusCode.NotFound, "model 'x' not found")).RootElement;

        Assert.Equal("model 'x' not found", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData(ClaudeErrorKind.InvalidRequest, 400, "invalid_request_error")]
    [InlineData(ClaudeErrorKind.Authentication, 401, "authentication_error")]
    [InlineData(ClaudeErrorKind.ModelNotFound, 404, "not_found_error")]
    [InlineData(ClaudeErrorKind.RateLimited, 429, "rate_limit_error")]
    [InlineData(ClaudeErrorKind.Overloaded, 503, "api_error")]
    [InlineData(ClaudeErrorKind.CliFailed, 502, "api_error")]
    public void OpenAi_clients_get_the_error_object_with_type_by_status(ClaudeErrorKind kind, int status, string type)
    {
        var error = new ClaudeBackendError(kind, "boom");

        var body = JsonDocument.Parse(ErrorEnvelopes.Create(ErrorStyle.OpenAi, error)).RootElement.GetProperty("error");

        Assert.Equal(status, (int)error.StatusCode);
        Assert.Equal("boom", body.GetProperty("message").GetString());
        Assert.Equal(type, body.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("param").ValueKind);
        Assert.Equal(JsonNamingPolicy.SnakeCaseLower.ConvertName(kind.ToString()), body.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(ClaudeErrorKind.ModelNotFound, 404, "not_found_error")]
    [InlineData(ClaudeErrorKind.RateLimited, 429, "rate_limit_error")]
    [InlineData(ClaudeErrorKind.Overloaded, 529, "overloaded_error")]
    [InlineData(ClaudeErrorKind.Authentication, 401, "authentication_error")]
    [InlineData(ClaudeErrorKind.CliFailed, 502, "api_error")]
    public void An_anthropic_client_gets_the_api_own_envelope_and_status(ClaudeErrorKind kind, int status, string type)
    {
        var error = new ClaudeBackendError(kind, "went wrong");

        var body = JsonDocument.Parse(ErrorEnvelopes.Create(ErrorStyle.Anthropic, error)).RootElement;

        Assert.Equal(status, (int)ErrorEnvelopes.StatusOf(ErrorStyle.Anthropic, error));
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal(type, body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("went wrong", body.GetProperty("error").GetProperty("message").GetString());
    }
}
