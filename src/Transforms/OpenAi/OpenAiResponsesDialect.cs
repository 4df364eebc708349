using System.Buffers;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms.OpenAi;

/// <summary>
/// OpenAI's <c>POST /v1/responses</c> (Codex, the newer OpenAI SDKs): <c>input</c> as a string or items,
/// <c>instructions</c>, function tools whose calls come out as <c>function_call</c> items and whose results come back
/// as <c>function_call_output</c> items (on the same waiting-process loop as the other dialects), thinking as
/// <c>reasoning</c> items, and <c>previous_response_id</c>, which continues a response this gateway gave.
/// </summary>
internal sealed class OpenAiResponsesDialect : ClaudeDialect
{
    public override string Name => "openai-responses";

    public override ErrorStyle ErrorStyle => ErrorStyle.OpenAi;

    public override string StreamContentType => OpenAiChatDialect.ContentType;

    public override DialectWireTypes WireTypes { get; } = new(typeof(ResponsesRequest), typeof(ResponsesResponse), typeof(ResponsesStreamEvent));

    internal override DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer)
    {
        immediateAnswer = null;
        var request = DialectJson.Deserialize(body, DialectJsonContext.Default.ResponsesRequest);
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            throw new DialectRequestException("Missing required parameter: 'model'.");
        }

        var tools = FunctionTools.From(request.Tools?.Select(tool => new FunctionTool(tool.Type, new FunctionDefinition(tool.Name, tool.Description, tool.Parameters))).ToList());
        List<string> system = [request.Instructions ?? ""];
        List<ClaudeMessage> messages = [];
        if (request.Input.ValueKind == JsonValueKind.String)
        {
            messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, request.Input.GetString()!));
        }
        else if (request.Input.ValueKind == JsonValueKind.Array)
        {
            foreach (var element in request.Input.EnumerateArray())
            {
                AddItem(DialectJson.Deserialize(element, DialectJsonContext.Default.ResponsesInputItem, "input item"), messages, system);
            }
        }
        else
        {
            throw new DialectRequestException("Missing required parameter: 'input'.");
        }

        if (messages.Count == 0)
        {
            throw new DialectRequestException("input: at least one message or function call output is required");
        }

        if (FunctionTools.Instruction(request.ToolChoice, request.ParallelToolCalls, tools) is { } instruction)
        {
            system.Add(instruction);
        }

        if (request.TopLogprobs is > 0)
        {
            throw RequestFields.Refused("top_logprobs", "the Claude CLI does not report token probabilities");
        }

        var fields = new RequestFields();
        fields.MaxOutputTokens(request.MaxOutputTokens, "max_output_tokens");
        fields.OpenAiReasoningEffort(request.Reasoning?.Effort, "reasoning.effort");
        fields.OpenAiResponseFormat(request.Text?.Format ?? default, "text.format");
        fields.Ignore("temperature", request.Temperature);
        fields.Ignore("top_p", request.TopP);
        fields.Unknown(request.Unknown);
        var turn = new ClaudeTurnRequest(request.Model, messages, DialectJson.SystemPrompt(system), Tools: tools, Options: fields.Build());
        return new DialectRequest(
            turn, request.Model, request.Stream ?? false, PreviousResponseId: request.PreviousResponseId, ShowThinking: fields.ShowThinking,
            Store: request.Store ?? true, Ignored: fields.Ignored);
    }

    /// <summary>Puts the conversation of the response the request continues in front of its input.</summary>
    internal override async ValueTask<DialectRequest> WithCallerAsync(DialectRequest request, DialectServices services, CancellationToken cancellationToken)
    {
        if (request.PreviousResponseId is not { Length: > 0 } previous)
        {
            return request;
        }

        var earlier = await services.ResponsesHistory.FindAsync(request.Turn.Owner, previous, cancellationToken)
            ?? throw new DialectRequestException($"Previous response with id '{previous}' not found.");
        return request with { Turn = request.Turn with { Messages = [.. earlier, .. request.Turn.Messages] } };
    }

    internal override AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp) =>
        new Writer(request, services.TimeProvider, startTimestamp, services.ResponsesHistory);

    private static void AddItem(ResponsesInputItem item, List<ClaudeMessage> messages, List<string> system)
    {
        switch (item.Type)
        {
            case null or "message":
                var (text, images) = OpenAiContent.Read(item.Content);
                switch (item.Role)
                {
                    case "system" or "developer":
                        system.Add(text);
                        break;
                    case "user":
                        messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, text, images));
                        break;
                    case "assistant":
                        messages.Add(new ClaudeMessage(ClaudeMessage.AssistantRole, text));
                        break;
                    default:
                        throw new DialectRequestException($"input: role '{item.Role}' must be 'user', 'assistant', 'system' or 'developer'");
                }

                break;
            case "function_call":
                var call = new ClaudeToolCall(
                    item.CallId ?? throw new DialectRequestException("input: a function_call needs its 'call_id'"),
                    item.Name ?? throw new DialectRequestException("input: a function_call needs its 'name'"),
                    item.Arguments is { Length: > 0 } arguments ? arguments : "{}");
                // The calls of one answer belong to its assistant message, after its words.
                if (messages is [.., { Role: ClaudeMessage.AssistantRole } last])
                {
                    messages[^1] = last with { ToolCalls = [.. last.ToolCalls ?? [], call] };
                }
                else
                {
                    messages.Add(new ClaudeMessage(ClaudeMessage.AssistantRole, "", ToolCalls: [call]));
                }

                break;
            case "function_call_output":
                var result = new ClaudeToolResult(
                    item.CallId ?? throw new DialectRequestException("input: a function_call_output needs its 'call_id'"),
                    item.Output.ValueKind == JsonValueKind.String ? item.Output.GetString()! : OpenAiContent.Read(item.Output).Text);
                if (messages is [.., { Role: ClaudeMessage.UserRole, Text.Length: 0, ToolResults: { Count: > 0 } results } pending])
                {
                    messages[^1] = pending with { ToolResults = [.. results, result] };
                }
                else
                {
                    messages.Add(new ClaudeMessage(ClaudeMessage.UserRole, "", ToolResults: [result]));
                }

                break;
            case "reasoning":
                // The model's own reasoning, sent back: the session it is in has it, a rebuilt one goes without.
                break;
            default:
                throw new DialectRequestException($"input: item type '{item.Type}' is not supported");
        }
    }

    /// <summary>
    /// The stream as the API sends it: <c>response.created</c> and <c>response.in_progress</c>, each output item added,
    /// filled (text, reasoning summary or function arguments) and done in turn, then <c>response.completed</c> with the
    /// CLI's usage. Every event carries its <c>sequence_number</c>.
    /// </summary>
    private sealed class Writer(DialectRequest request, TimeProvider timeProvider, long startTimestamp, IResponsesHistory history)
        : AnswerWriter(request, timeProvider, startTimestamp)
    {
        private readonly string _id = "resp_" + Guid.NewGuid().ToString("N");
        private readonly long _createdAt = timeProvider.GetUtcNow().ToUnixTimeSeconds();
        private readonly List<ResponsesOutputItem> _output = [];
        private readonly StringBuilder _open = new();
        private string? _openKind;
        private string _openId = "";
        private long _sequence;
        private bool _started;

        protected override void WriteText(string text, IBufferWriter<byte> output)
        {
            if (Open("message", "msg_", output))
            {
                Event(new("response.content_part.added", _sequence) { ItemId = _openId, OutputIndex = _output.Count, ContentIndex = 0, Part = new ResponsesOutputText("") }, output);
            }

            _open.Append(text);
            Event(new("response.output_text.delta", _sequence) { ItemId = _openId, OutputIndex = _output.Count, ContentIndex = 0, Delta = text }, output);
        }

        protected override void WriteThinking(string thinking, IBufferWriter<byte> output)
        {
            Open("reasoning", "rs_", output);
            _open.Append(thinking);
            Event(new("response.reasoning_summary_text.delta", _sequence) { ItemId = _openId, OutputIndex = _output.Count, SummaryIndex = 0, Delta = thinking }, output);
        }

        protected override void WriteToolCall(ToolCallRequested call, IBufferWriter<byte> output)
        {
            Start(output);
            Close(output);
            var id = "fc_" + Guid.NewGuid().ToString("N")[..24];
            var index = _output.Count;
            Event(new("response.output_item.added", _sequence) { OutputIndex = index, Item = new ResponsesFunctionCallItem(id, call.Call.Id, call.Call.Name, "", "in_progress") }, output);
            Event(new("response.function_call_arguments.delta", _sequence) { ItemId = id, OutputIndex = index, Delta = call.Call.Arguments }, output);
            Event(new("response.function_call_arguments.done", _sequence) { ItemId = id, OutputIndex = index, Arguments = call.Call.Arguments }, output);
            var done = new ResponsesFunctionCallItem(id, call.Call.Id, call.Call.Name, call.Call.Arguments, "completed");
            _output.Add(done);
            Event(new("response.output_item.done", _sequence) { OutputIndex = index, Item = done }, output);
        }

        protected override void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output)
        {
            Start(output);
            Close(output);
            Remember(result);
            var response = Response(StatusOf(result), _output, result);
            Event(new(response.Status == Incomplete ? "response.incomplete" : "response.completed", _sequence) { Response = response }, output);
        }

        /// <summary>The API's own end of a failed stream: the open item closed, then <c>response.failed</c> with the error.</summary>
        protected override void WriteStreamError(ClaudeBackendError error, IBufferWriter<byte> output)
        {
            Start(output);
            Close(output);
            var failed = Response("failed", _output, null) with { Error = new ResponsesError(ErrorEnvelopes.CodeOf(error.Kind), error.Message) };
            Event(new("response.failed", _sequence) { Response = failed }, output);
        }

        public override void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output)
        {
            List<ResponsesOutputItem> items = [];
            if (thinking.Length > 0)
            {
                items.Add(new ResponsesReasoningItem("rs_" + Guid.NewGuid().ToString("N")[..24], [new ResponsesSummaryText(thinking)]));
            }

            if (result.Text.Length > 0 || result.ToolCalls is not { Count: > 0 })
            {
                items.Add(new ResponsesMessageItem("msg_" + Guid.NewGuid().ToString("N")[..24], "completed", [new ResponsesOutputText(result.Text)]));
            }

            items.AddRange((result.ToolCalls ?? []).Select(call => new ResponsesFunctionCallItem("fc_" + Guid.NewGuid().ToString("N")[..24], call.Id, call.Name, call.Arguments, "completed")));
            Remember(result);
            JsonOutput.WriteJson(output, Response(StatusOf(result), items, result), DialectJsonContext.Default.ResponsesResponse);
        }

        /// <summary>Keeps the conversation up to this answer, for a request that names this response as its previous one.</summary>
        private void Remember(ClaudeTurnResult result)
        {
            if (!Request.Store)
            {
                // store:false (Codex sends its whole history each time): nothing is kept.
                return;
            }

            history.Add(Request.Turn.Owner, _id, Request.PreviousResponseId, [.. Request.Turn.Messages, new ClaudeMessage(ClaudeMessage.AssistantRole, result.Text, ToolCalls: result.ToolCalls)]);
        }

        private const string Incomplete = "incomplete";

        /// <summary>An answer cut at the output limit is <c>incomplete</c>, as the API reports it.</summary>
        private static string StatusOf(ClaudeTurnResult result) =>
            result.StopReason == ClaudeTurnResult.MaxTokensStopReason ? Incomplete : "completed";

        private ResponsesResponse Response(string status, IReadOnlyList<ResponsesOutputItem> output, ClaudeTurnResult? result) => new(
            _id,
            _createdAt,
            status,
            Request.RequestedModel,
            output,
            result is null ? null : Usage(result),
            Request.PreviousResponseId,
            null)
        {
            IncompleteDetails = status == Incomplete ? new ResponsesIncompleteDetails("max_output_tokens") : null,
        };

        private static ResponsesUsage Usage(ClaudeTurnResult result) => new(
            result.Usage.PromptTokens,
            result.Usage.OutputTokens,
            result.Usage.PromptTokens + result.Usage.OutputTokens,
            new ResponsesInputTokensDetails(result.Usage.CacheReadInputTokens),
            new ResponsesOutputTokensDetails(0));

        private void Start(IBufferWriter<byte> output)
        {
            if (_started)
            {
                return;
            }

            _started = true;
            Event(new("response.created", _sequence) { Response = Response("in_progress", [], null) }, output);
            Event(new("response.in_progress", _sequence) { Response = Response("in_progress", [], null) }, output);
        }

        /// <summary>Opens an item of <paramref name="kind"/> unless one is open; true when it opened one.</summary>
        private bool Open(string kind, string idPrefix, IBufferWriter<byte> output)
        {
            Start(output);
            if (_openKind == kind)
            {
                return false;
            }

            Close(output);
            (_openKind, _openId) = (kind, idPrefix + Guid.NewGuid().ToString("N")[..24]);
            ResponsesOutputItem item = kind == "message"
                ? new ResponsesMessageItem(_openId, "in_progress", [])
                : new ResponsesReasoningItem(_openId, []);
            Event(new("response.output_item.added", _sequence) { OutputIndex = _output.Count, Item = item }, output);
            return true;
        }

        private void Close(IBufferWriter<byte> output)
        {
            if (_openKind is null)
            {
                return;
            }

            var text = _open.ToString();
            var index = _output.Count;
            ResponsesOutputItem done;
            if (_openKind == "message")
            {
                Event(new("response.output_text.done", _sequence) { ItemId = _openId, OutputIndex = index, ContentIndex = 0, Text = text }, output);
                Event(new("response.content_part.done", _sequence) { ItemId = _openId, OutputIndex = index, ContentIndex = 0, Part = new ResponsesOutputText(text) }, output);
                done = new ResponsesMessageItem(_openId, "completed", [new ResponsesOutputText(text)]);
            }
            else
            {
                Event(new("response.reasoning_summary_text.done", _sequence) { ItemId = _openId, OutputIndex = index, SummaryIndex = 0, Text = text }, output);
                done = new ResponsesReasoningItem(_openId, [new ResponsesSummaryText(text)]);
            }

            _output.Add(done);
            Event(new("response.output_item.done", _sequence) { OutputIndex = index, Item = done }, output);
            (_openKind, _open.Length) = (null, 0);
        }

        private void Event(ResponsesStreamEvent streamEvent, IBufferWriter<byte> output)
        {
            _sequence++;
            JsonOutput.WriteSseEvent(output, streamEvent.Type, streamEvent, DialectJsonContext.Default.ResponsesStreamEvent);
        }
    }
}
