using System.Buffers;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms.Ollama;

/// <summary>Ollama's <c>POST /api/chat</c>.</summary>
internal sealed class OllamaChatDialect : OllamaDialect
{
    public override string Name => "ollama-chat";

    public override DialectWireTypes WireTypes { get; } = new(typeof(OllamaChatRequest), typeof(OllamaChatChunk), typeof(OllamaChatChunk));

    internal override DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer)
    {
        var request = DialectJson.Deserialize(body, DialectJsonContext.Default.OllamaChatRequest);
        var model = RequireModel(request.Model);
        immediateAnswer = null;
        if (request.Messages is null or { Count: 0 })
        {
            immediateAnswer = LoadAnswer(model, request.KeepAlive, timeProvider,
                (m, at, reason) => JsonOutput.ToBytes(new OllamaChatChunk(m, at, new OllamaResponseMessage(""), true, reason), DialectJsonContext.Default.OllamaChatChunk));
            return null;
        }

        var tools = FunctionTools.From(request.Tools);
        List<string> system = [];
        List<ClaudeMessage> messages = [];
        foreach (var message in request.Messages)
        {
            var role = message.Role?.ToLowerInvariant();
            var text = message.Content ?? "";
            switch (role)
            {
                case "system":
                    system.Add(text);
                    break;
                case "user":
                    messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, text, message.Images?.Select(ImageData.FromBase64).ToList()));
                    break;
                case "assistant":
                    messages.Add(new ClaudeMessage(ClaudeMessage.AssistantRole, text, ToolCalls: ToolCallsOf(message.ToolCalls, messages.Count)));
                    break;
                case "tool":
                    AddToolResult(messages, message, text);
                    break;
                default:
                    throw new DialectRequestException($"invalid role '{message.Role}': use system, user, assistant or tool");
            }
        }

        var fields = Fields(request.Format, request.Options, request.Think, request.KeepAlive);
        fields.Unknown(request.Unknown);
        var turn = new ClaudeTurnRequest(
            model,
            messages,
            DialectJson.SystemPrompt(system),
            DialectJson.ConversationId(request.Id, request.User),
            Tools: tools,
            Options: fields.Build());
        return new DialectRequest(turn, model, request.Stream ?? true, ShowThinking: fields.ShowThinking, Ignored: fields.Ignored);
    }

    /// <summary>An assistant message's calls; a client that drops their ids gets ones by place, which only pair results.</summary>
    private static List<ClaudeToolCall>? ToolCallsOf(List<OllamaToolCall>? calls, int messageIndex) => calls is null or { Count: 0 }
        ? null
        : [.. calls.Select((call, i) => new ClaudeToolCall(
            call.Id is { Length: > 0 } id ? id : $"call_{messageIndex}_{i}",
            call.Function?.Name ?? throw new DialectRequestException("a tool call needs its function's 'name'"),
            FunctionTools.ArgumentsText(call.Function.Arguments)))];

    /// <summary>
    /// A tool message answers a call of the assistant message before it: the one its <c>tool_call_id</c> names, else the
    /// first unanswered call of its <c>tool_name</c>, else the first unanswered call. The results of one round go
    /// together, as one message.
    /// </summary>
    private static void AddToolResult(List<ClaudeMessage> messages, OllamaMessage message, string content)
    {
        var last = messages.Count > 0 ? messages[^1] : null;
        var earlier = last is { Role: ClaudeMessage.UserRole, Text.Length: 0, ToolResults: { Count: > 0 } results } ? results : [];
        var calls = (earlier.Count == 0 ? last : messages.Count >= 2 ? messages[^2] : null)?.ToolCalls ?? [];
        var open = calls.Where(c => earlier.All(r => r.ToolCallId != c.Id)).ToList();
        var call = open.FirstOrDefault(c => c.Id == message.ToolCallId)
            ?? open.FirstOrDefault(c => c.Name == message.ToolName)
            ?? open.FirstOrDefault();
        var id = call?.Id ?? message.ToolCallId
            ?? throw new DialectRequestException("a 'tool' message must follow the assistant message with its tool_calls");
        var result = new ClaudeToolResult(id, content);
        if (earlier.Count > 0)
        {
            messages[^1] = last! with { ToolResults = [.. earlier, result] };
        }
        else
        {
            messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, "", ToolResults: [result]));
        }
    }

    internal override AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp) =>
        new Writer(request, services.TimeProvider, startTimestamp);

    private sealed class Writer(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
        : OllamaWriter(request, timeProvider, startTimestamp)
    {
        protected override void WriteText(string text, IBufferWriter<byte> output) =>
            Chunk(new OllamaResponseMessage(text), output);

        /// <summary>As Ollama streams a call: whole, in a chunk of its own.</summary>
        protected override void WriteToolCall(ToolCallRequested call, IBufferWriter<byte> output) =>
            Chunk(new OllamaResponseMessage("", ToolCalls: [ToOllama(call.Call, call.Index)]), output);

        private static OllamaToolCall ToOllama(ClaudeToolCall call, int index) =>
            new(call.Id, new OllamaFunctionCall(call.Name, FunctionTools.ArgumentsObject(call.Arguments), index));

        protected override void WriteThinking(string thinking, IBufferWriter<byte> output) =>
            Chunk(new OllamaResponseMessage("", thinking), output);

        protected override void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output) =>
            JsonOutput.WriteLine(output, Final(result, new OllamaResponseMessage("")), DialectJsonContext.Default.OllamaChatChunk);

        public override void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output)
        {
            var calls = result.ToolCalls is { Count: > 0 } made ? made.Select(ToOllama).ToList() : null;
            var message = new OllamaResponseMessage(result.Text, thinking.Length > 0 ? thinking : null, calls);
            JsonOutput.WriteJson(output, Final(result, message), DialectJsonContext.Default.OllamaChatChunk);
        }

        private void Chunk(OllamaResponseMessage message, IBufferWriter<byte> output) =>
            JsonOutput.WriteLine(output, new OllamaChatChunk(Request.RequestedModel, TimeProvider.GetUtcNow(), message, false), DialectJsonContext.Default.OllamaChatChunk);

        private OllamaChatChunk Final(ClaudeTurnResult result, OllamaResponseMessage message) =>
            WithMetrics(
                new OllamaChatChunk(Request.RequestedModel, TimeProvider.GetUtcNow(), message, true, TurnMetrics.FinishReason(result)),
                TurnMetrics.From(result, Elapsed));
    }
}

/// <summary>Ollama's <c>POST /api/generate</c>.</summary>
internal sealed class OllamaGenerateDialect : OllamaDialect
{
    public override string Name => "ollama-generate";

    public override DialectWireTypes WireTypes { get; } = new(typeof(OllamaGenerateRequest), typeof(OllamaGenerateChunk), typeof(OllamaGenerateChunk));

    internal override DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer)
    {
        var request = DialectJson.Deserialize(body, DialectJsonContext.Default.OllamaGenerateRequest);
        var model = RequireModel(request.Model);
        immediateAnswer = null;
        if (string.IsNullOrEmpty(request.Prompt) && request.Images is null or { Count: 0 })
        {
            immediateAnswer = LoadAnswer(model, request.KeepAlive, timeProvider,
                (m, at, reason) => JsonOutput.ToBytes(new OllamaGenerateChunk(m, at, "", null, true, reason), DialectJsonContext.Default.OllamaGenerateChunk));
            return null;
        }

        if (request.Suffix is { Length: > 0 })
        {
            // Fill-in-the-middle needs the model to see text after the answer, which a chat turn cannot express.
            throw RequestFields.Refused("suffix", "Claude models do not fill in the middle");
        }

        var fields = Fields(request.Format, request.Options, request.Think, request.KeepAlive);
        fields.Ignore("raw", request.Raw == true);
        fields.Ignore("template", request.Template is { Length: > 0 });
        fields.Ignore("context", request.Context);
        fields.Unknown(request.Unknown);
        var prompt = new ClaudeMessage(ClaudeMessage.UserRole, request.Prompt ?? "", request.Images?.Select(ImageData.FromBase64).ToList());
        var turn = new ClaudeTurnRequest(
            model,
            [prompt],
            DialectJson.SystemPrompt(request.System is null ? [] : [request.System]),
            DialectJson.ConversationId(request.Id, request.User),
            Options: fields.Build());
        return new DialectRequest(turn, model, request.Stream ?? true, ShowThinking: fields.ShowThinking, Ignored: fields.Ignored);
    }

    internal override AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp) =>
        new Writer(request, services.TimeProvider, startTimestamp);

    private sealed class Writer(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
        : OllamaWriter(request, timeProvider, startTimestamp)
    {
        protected override void WriteText(string text, IBufferWriter<byte> output) => Chunk(text, null, output);

        protected override void WriteThinking(string thinking, IBufferWriter<byte> output) => Chunk("", thinking, output);

        protected override void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output) =>
            JsonOutput.WriteLine(output, Final(result, "", null), DialectJsonContext.Default.OllamaGenerateChunk);

        public override void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output) =>
            JsonOutput.WriteJson(output, Final(result, result.Text, thinking.Length > 0 ? thinking : null), DialectJsonContext.Default.OllamaGenerateChunk);

        private void Chunk(string response, string? thinking, IBufferWriter<byte> output) =>
            JsonOutput.WriteLine(output, new OllamaGenerateChunk(Request.RequestedModel, TimeProvider.GetUtcNow(), response, thinking, false), DialectJsonContext.Default.OllamaGenerateChunk);

        private OllamaGenerateChunk Final(ClaudeTurnResult result, string response, string? thinking) =>
            WithMetrics(
                new OllamaGenerateChunk(Request.RequestedModel, TimeProvider.GetUtcNow(), response, thinking, true, TurnMetrics.FinishReason(result)),
                TurnMetrics.From(result, Elapsed));
    }
}

/// <summary>What Ollama's chat and generate have in common: NDJSON, the error line, the load probe, the final metrics.</summary>
internal abstract class OllamaDialect : ClaudeDialect
{
    public const string ContentType = "application/x-ndjson";

    public override ErrorStyle ErrorStyle => ErrorStyle.Ollama;

    public override string StreamContentType => ContentType;

    /// <summary>The request's fields beyond its messages, as Ollama names them.</summary>
    protected static RequestFields Fields(JsonElement format, JsonElement options, JsonElement think, JsonElement keepAlive)
    {
        var fields = new RequestFields();
        fields.OllamaFormat(format);
        fields.OllamaOptions(options);
        fields.OllamaThink(think);
        fields.KeepAlive(keepAlive);
        return fields;
    }

    protected static string RequireModel(string? model) =>
        string.IsNullOrWhiteSpace(model) ? throw new DialectRequestException("model is required") : model;

    /// <summary>Clients "load" a model with an empty request (and Open WebUI "unloads" with <c>keep_alive: 0</c>); nothing runs.</summary>
    protected static byte[] LoadAnswer(string model, JsonElement keepAlive, TimeProvider timeProvider, Func<string, DateTimeOffset, string, byte[]> create) =>
        create(model, timeProvider.GetUtcNow(), IsZero(keepAlive) ? "unload" : "load");

    protected static T WithMetrics<T>(T chunk, TurnMetrics metrics)
        where T : OllamaMetrics => chunk with
        {
            TotalDuration = metrics.TotalDurationNs,
            LoadDuration = metrics.LoadDurationNs,
            PromptEvalCount = metrics.PromptTokens > 0 ? metrics.PromptTokens : null,
            PromptEvalDuration = metrics.PromptEvalDurationNs,
            EvalCount = metrics.OutputTokens > 0 ? metrics.OutputTokens : null,
            EvalDuration = metrics.EvalDurationNs,
        };

    private static bool IsZero(JsonElement keepAlive) => keepAlive.ValueKind switch
    {
        JsonValueKind.Number => keepAlive.TryGetDouble(out var seconds) && seconds == 0,
        JsonValueKind.String => keepAlive.GetString() is "0" or "0s" or "0m" or "0h",
        _ => false,
    };

    protected abstract class OllamaWriter(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
        : AnswerWriter(request, timeProvider, startTimestamp)
    {
        /// <summary>Ollama's own way: one last <c>{"error":"…"}</c> line, and no <c>done</c> chunk after it.</summary>
        protected override void WriteStreamError(ClaudeBackendError error, IBufferWriter<byte> output) =>
            JsonOutput.WriteLine(output, new OllamaError(error.Message), DialectJsonContext.Default.OllamaError);
    }
}
