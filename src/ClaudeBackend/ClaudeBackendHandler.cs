using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The claude backend as an in-process HTTP destination. <c>POST /v1/turns</c> with a <see cref="ClaudeTurnRequest"/>
/// runs the CLI and answers <c>application/x-ndjson</c>: the CLI's stream-json lines as it prints them. A turn that
/// fails before the model answers gets an error status and a <see cref="ClaudeBackendErrorBody"/>.
/// </summary>
/// <remarks>The contract is plain HTTP, so the same handler could run behind a socket in a worker process.</remarks>
public sealed partial class ClaudeBackendHandler(
    IClaudeCliLauncher launcher,
    ClaudeModelCatalog catalog,
    ConversationStore conversations,
    IOptions<ClaudeBackendOptions> options,
    ILogger<ClaudeBackendHandler> logger) : HttpMessageHandler
{
    public const string TurnsPath = ClaudeBackendPaths.Turns;
    public const string StreamMediaType = "application/x-ndjson";

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Method != HttpMethod.Post || request.RequestUri?.AbsolutePath != TurnsPath)
        {
            return ErrorResponse(new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, $"The claude backend serves only POST {TurnsPath}."), HttpStatusCode.NotFound);
        }

        // YARP's request content cannot be read as a stream (it throws); read it whole.
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var turnRequest = Parse(body, out var invalid);
        if (turnRequest is null)
        {
            return ErrorResponse(invalid!);
        }

        if (!catalog.TryFind(turnRequest.Model, out var model))
        {
            return ErrorResponse(new ClaudeBackendError(ClaudeErrorKind.ModelNotFound, $"model '{turnRequest.Model}' not found"));
        }

        var turn = await StartTurnAsync(turnRequest, model, cancellationToken);
        ClaudeBackendError? error;
        try
        {
            error = await turn.WaitForAnswerAsync(cancellationToken);
            if (error is not null && turnRequest.ConversationId is { } conversationId && await turn.LostSessionAsync())
            {
                // The stored session is gone (e.g. ~/.claude was cleared): start over, with the client's history.
                LogSessionLost(logger, conversationId);
                await turn.DisposeAsync();
                await conversations.ForgetAsync(conversationId, cancellationToken);
                turn = await StartTurnAsync(turnRequest, model, cancellationToken);
                error = await turn.WaitForAnswerAsync(cancellationToken);
            }
        }
        catch
        {
            await turn.DisposeAsync();
            throw;
        }

        if (error is not null)
        {
            await turn.DisposeAsync();
            LogTurnFailed(logger, error.Kind, error.Message);
            return ErrorResponse(error);
        }

        var content = new StreamContent(new ClaudeTurnStream(turn));
        content.Headers.ContentType = new MediaTypeHeaderValue(StreamMediaType);
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request };
    }

    private async Task<ClaudeTurn> StartTurnAsync(ClaudeTurnRequest request, ClaudeModelOptions model, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        List<string> ownedPaths = [];
        IDisposable? lease = null;
        try
        {
            string workingDirectory;
            Guid? sessionId = null;
            var mode = ClaudeSessionMode.Ephemeral;
            if (request.ConversationId is { } conversationId)
            {
                lease = await conversations.EnterTurnAsync(conversationId, cancellationToken);
                workingDirectory = conversations.WorkingDirectoryOf(conversationId);
                var stored = await conversations.FindSessionAsync(conversationId, cancellationToken);
                (mode, sessionId) = stored is { } known ? (ClaudeSessionMode.Resume, known) : (ClaudeSessionMode.Create, Guid.NewGuid());
            }
            else
            {
                workingDirectory = Directory.CreateTempSubdirectory("claudeproxy-turn-").FullName;
                ownedPaths.Add(workingDirectory);
            }

            string? systemPromptFile = null;
            if ((request.SystemPrompt ?? settings.DefaultSystemPrompt) is { Length: > 0 } systemPrompt)
            {
                // A file, not argv: prompts stay out of the process list.
                systemPromptFile = Path.Combine(Path.GetTempPath(), $"claudeproxy-system-{Guid.NewGuid():N}.txt");
                await File.WriteAllTextAsync(systemPromptFile, systemPrompt, cancellationToken);
                ownedPaths.Add(systemPromptFile);
            }

            // A resumed session already holds the history; only the new turn is sent.
            var inputLine = TurnPrompt.ToInputLine(request.Messages, includeHistory: mode != ClaudeSessionMode.Resume);
            var invocation = new ClaudeCliInvocation(model.CliModel, inputLine, workingDirectory, mode, sessionId, systemPromptFile);
            var run = await launcher.StartAsync(invocation, cancellationToken);
            return new ClaudeTurn(run, conversations, request.ConversationId, sessionId, lease, ownedPaths);
        }
        catch
        {
            lease?.Dispose();
            throw;
        }
    }

    private static ClaudeTurnRequest? Parse(byte[] body, out ClaudeBackendError? error)
    {
        error = null;
        ClaudeTurnRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(body, ClaudeBackendJsonContext.Default.ClaudeTurnRequest);
        }
        catch (JsonException exception)
        {
            error = new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, $"Invalid turn request: {exception.Message}");
            return null;
        }

        var problem = request switch
        {
            null => "The turn request is empty.",
            { Model: null or "" } => "model is required",
            { Messages: null or { Count: 0 } } => "messages must not be empty",
            _ when request.Messages.Any(m => m.Role is not (ClaudeMessage.UserRole or ClaudeMessage.AssistantRole)) =>
                "message roles must be 'user' or 'assistant'",
            _ when request.Messages[^1].Role != ClaudeMessage.UserRole => "the last message must be a user message",
            _ => null,
        };
        if (problem is not null)
        {
            error = new ClaudeBackendError(ClaudeErrorKind.InvalidRequest, problem);
            return null;
        }

        return request;
    }

    private static HttpResponseMessage ErrorResponse(ClaudeBackendError error, HttpStatusCode? status = null)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new ClaudeBackendErrorBody(error), ClaudeBackendJsonContext.Default.ClaudeBackendErrorBody);
        var content = new ByteArrayContent(json);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = Encoding.UTF8.WebName };
        var response = new HttpResponseMessage(status ?? error.StatusCode) { Content = content };
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(seconds));
        }

        return response;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Claude session of conversation {ConversationId} is gone; starting a new one")]
    private static partial void LogSessionLost(ILogger logger, string conversationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claude turn failed before answering: {Kind}: {Message}")]
    private static partial void LogTurnFailed(ILogger logger, ClaudeErrorKind kind, string message);
}
