using System.Buffers;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms.OpenAi;

/// <summary>OpenAI's <c>POST /v1/chat/completions</c> (and the original server's <c>/chat/completions</c>).</summary>
internal sealed class OpenAiChatDialect : ClaudeDialect
{
    public const string ContentType = "text/event-stream";

    public override string Name => "openai-chat";

    public override ErrorStyle ErrorStyle => ErrorStyle.OpenAi;

    public override string StreamContentType => ContentType;

    public override DialectWireTypes WireTypes { get; } = new(typeof(OpenAiChatRequest), typeof(OpenAiChatCompletion), typeof(OpenAiChatChunk));

    internal override DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer)
    {
        immediateAnswer = null;
        var request = DialectJson.Deserialize(body, DialectJsonContext.Default.OpenAiChatRequest);
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            throw new DialectRequestException("you must provide a model parameter");
        }

        if (request.Messages is null or { Count: 0 })
        {
            throw new DialectRequestException("[] is too short - 'messages'");
        }

        var tools = FunctionTools.From(request.Tools);
        List<string> system = [];
        List<ClaudeMessage> messages = [];
        foreach (var message in request.Messages)
        {
            var (text, images) = OpenAiContent.Read(message.Content);
            switch (message.Role?.ToLowerInvariant())
            {
                case "system" or "developer":
                    system.Add(text);
                    break;
                case "user":
                    messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, text, images));
                    break;
                case "assistant":
                    messages.Add(new ClaudeMessage(ClaudeMessage.AssistantRole, text, ToolCalls: ToolCallsOf(message.ToolCalls)));
                    break;
                case "tool":
                    var result = new ClaudeToolResult(
                        message.ToolCallId is { Length: > 0 } callId ? callId : throw new DialectRequestException("a 'tool' message needs its 'tool_call_id'"),
                        text);
                    // The results of one round go together, as one message.
                    if (messages is [.., { ToolResults: { Count: > 0 } earlier } last] && last.Text.Length == 0)
                    {
                        messages[^1] = last with { ToolResults = [.. earlier, result] };
                    }
                    else
                    {
                        messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, "", ToolResults: [result]));
                    }

                    break;
                case "function":
                    // The API's old function calling, before tool calls had ids: its results go as text, as before.
                    messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, "Function result:\n" + text));
                    break;
                default:
                    throw new DialectRequestException($"Invalid value: '{message.Role}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.");
            }
        }

        if (FunctionTools.Instruction(request.ToolChoice, request.ParallelToolCalls, tools) is { } toolInstruction)
        {
            system.Add(toolInstruction);
        }

        var fields = Fields(request);
        var turn = new ClaudeTurnRequest(
            request.Model,
            messages,
            DialectJson.SystemPrompt(system),
            DialectJson.ConversationId(request.Id, request.User),
            Tools: tools,
            Options: fields.Build());
        return new DialectRequest(turn, request.Model, request.Stream ?? false, request.StreamOptions?.IncludeUsage ?? false, ShowThinking: fields.ShowThinking, Ignored: fields.Ignored);
    }

    /// <summary>The request's fields beyond its messages: honoured, ignored (sampling), or refused.</summary>
    private static RequestFields Fields(OpenAiChatRequest request)
    {
        if (request.N is > 1)
        {
            throw RequestFields.Refused("n", "the Claude CLI gives one answer per request; send n requests");
        }

        if (request.Logprobs == true || request.TopLogprobs is > 0)
        {
            throw RequestFields.Refused(request.Logprobs == true ? "logprobs" : "top_logprobs", "the Claude CLI does not report token probabilities");
        }

        if (request.Audio.ValueKind == JsonValueKind.Object || request.Modalities?.Contains("audio") == true)
        {
            throw RequestFields.Refused(request.Audio.ValueKind == JsonValueKind.Object ? "audio" : "modalities", "Claude models answer in text only");
        }

        var fields = new RequestFields();
        fields.MaxOutputTokens(request.MaxCompletionTokens ?? request.MaxTokens, request.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens");
        fields.Stop(request.Stop, "stop");
        fields.OpenAiResponseFormat(request.ResponseFormat, "response_format");
        fields.OpenAiReasoningEffort(request.ReasoningEffort, "reasoning_effort");
        fields.Ignore("temperature", request.Temperature);
        fields.Ignore("top_p", request.TopP);
        fields.Ignore("seed", request.Seed);
        fields.Ignore("frequency_penalty", request.FrequencyPenalty);
        fields.Ignore("presence_penalty", request.PresencePenalty);
        fields.Ignore("logit_bias", request.LogitBias);
        fields.Unknown(request.Unknown);
        return fields;
    }

    internal override AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp) =>
        new Writer(request, services.TimeProvider, startTimestamp);

    private static List<ClaudeToolCall>? ToolCallsOf(List<OpenAiToolCall>? calls) => calls is null or { Count: 0 }
        ? null
        : [.. calls.Select(call => new ClaudeToolCall(
            call.Id ?? throw new DialectRequestException("a tool call needs its 'id'"),
            call.Function?.Name ?? throw new DialectRequestException("a tool call needs its function's 'name'"),
            call.Function.Arguments is { Length: > 0 } arguments ? arguments : "{}"))];

    private sealed class Writer(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
        : AnswerWriter(request, timeProvider, startTimestamp)
    {
        private readonly string _id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        private readonly long _created = timeProvider.GetUtcNow().ToUnixTimeSeconds();
        private bool _roleSent;

        protected override void WriteText(string text, IBufferWriter<byte> output) =>
            Chunk(new OpenAiDelta(Role(), Content: text), null, output);

        protected override void WriteThinking(string thinking, IBufferWriter<byte> output) =>
            Chunk(new OpenAiDelta(Role(), Reasoning: thinking), null, output);

        /// <summary>As the OpenAI API streams a call: its name first, then its arguments.</summary>
        protected override void WriteToolCall(ToolCallRequested call, IBufferWriter<byte> output)
        {
            Chunk(new OpenAiDelta(Role(), ToolCalls: [new OpenAiToolCallDelta(call.Index, call.Call.Id, "function", new OpenAiFunctionCall(call.Call.Name, ""))]), null, output);
            Chunk(new OpenAiDelta(ToolCalls: [new OpenAiToolCallDelta(call.Index, null, null, new OpenAiFunctionCall(null, call.Call.Arguments))]), null, output);
        }

        protected override void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output)
        {
            if (!_roleSent)
            {
                Chunk(new OpenAiDelta(Role(), Content: ""), null, output);
            }

            Chunk(new OpenAiDelta(), FinishReason(result), output);
            if (Request.IncludeUsage)
            {
                JsonOutput.WriteSseFrame(output, new OpenAiChatChunk(_id, _created, Request.RequestedModel, [], Usage(result)), DialectJsonContext.Default.OpenAiChatChunk);
            }

            output.Write("data: [DONE]\n\n"u8);
        }

        protected override void WriteStreamError(ClaudeBackendError error, IBufferWriter<byte> output)
        {
            // The OpenAI SDKs raise an APIError for a data frame that carries "error".
            output.Write("data: "u8);
            output.Write(ErrorEnvelopes.Create(ErrorStyle.OpenAi, error));
            output.Write("\n\n"u8);
        }

        public override void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output)
        {
            var calls = result.ToolCalls is { Count: > 0 } made
                ? made.Select(c => new OpenAiToolCall(c.Id, new OpenAiFunctionCall(c.Name, c.Arguments))).ToList()
                : null;
            // With calls and no words the API sends content null.
            var message = new OpenAiResponseMessage(calls is not null && result.Text.Length == 0 ? null : result.Text, thinking.Length > 0 ? thinking : null, calls);
            var completion = new OpenAiChatCompletion(_id, _created, Request.RequestedModel, [new OpenAiChoice(0, message, FinishReason(result))], Usage(result));
            JsonOutput.WriteJson(output, completion, DialectJsonContext.Default.OpenAiChatCompletion);
        }

        private static string FinishReason(ClaudeTurnResult result) =>
            result.ToolCalls is { Count: > 0 } ? "tool_calls" : TurnMetrics.FinishReason(result);

        private string? Role()
        {
            if (_roleSent)
            {
                return null;
            }

            _roleSent = true;
            return "assistant";
        }

        private void Chunk(OpenAiDelta delta, string? finishReason, IBufferWriter<byte> output) =>
            JsonOutput.WriteSseFrame(
                output,
                new OpenAiChatChunk(_id, _created, Request.RequestedModel, [new OpenAiChunkChoice(0, delta, finishReason)]),
                DialectJsonContext.Default.OpenAiChatChunk);

        private static OpenAiUsage Usage(ClaudeTurnResult result)
        {
            var usage = result.Usage;
            return new OpenAiUsage(usage.PromptTokens, usage.OutputTokens, usage.PromptTokens + usage.OutputTokens, new OpenAiPromptTokensDetails(usage.CacheReadInputTokens));
        }
    }
}
