using System.Buffers;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.Transforms.Anthropic;

/// <summary>
/// Anthropic's <c>POST /v1/messages</c>, as the Anthropic SDKs and Claude Code (<c>ANTHROPIC_BASE_URL</c>) speak it:
/// system text, text and image blocks, the client's functions as tools with <c>tool_use</c>/<c>tool_result</c> blocks on
/// the same paused-process loop as the other dialects, and the API's own stream of events.
/// </summary>
internal sealed class AnthropicMessagesDialect : ClaudeDialect
{
    public const string ContentType = "text/event-stream";

    public override string Name => "anthropic-messages";

    public override ErrorStyle ErrorStyle => ErrorStyle.Anthropic;

    public override string StreamContentType => ContentType;

    public override DialectWireTypes WireTypes { get; } = new(typeof(AnthropicMessagesRequest), typeof(AnthropicResponse), typeof(AnthropicContentBlockDelta));

    internal override DialectRequest? Parse(byte[] body, TimeProvider timeProvider, out byte[]? immediateAnswer)
    {
        immediateAnswer = null;
        var request = DialectJson.Deserialize(body, DialectJsonContext.Default.AnthropicMessagesRequest);
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            throw new DialectRequestException("model: Field required");
        }

        if (request.Messages is null or { Count: 0 })
        {
            throw new DialectRequestException("messages: at least one message is required");
        }

        var tools = ToolsOf(request.Tools);
        List<string> system = [SystemText(request.System)];
        if (request.ToolChoice is { } choice && FunctionTools.Instruction(ChoiceMode(choice.Type), choice.Name, choice.DisableParallelToolUse == true ? false : null, tools) is { } instruction)
        {
            system.Add(instruction);
        }

        var messages = request.Messages.Select(MessageOf).ToList();
        var fields = Fields(request);
        var turn = new ClaudeTurnRequest(request.Model, messages, DialectJson.SystemPrompt(system), Tools: tools, Options: fields.Build());
        return new DialectRequest(turn, request.Model, request.Stream ?? false, ShowThinking: fields.ShowThinking, Ignored: fields.Ignored);
    }

    /// <summary>
    /// The API thinks only when asked to (<c>thinking</c> enabled or adaptive), and answers with thinking blocks then;
    /// clients read <c>content[0]</c> as the text otherwise. A budget is the CLI's to choose (it thinks adaptively).
    /// </summary>
    private static RequestFields Fields(AnthropicMessagesRequest request)
    {
        var fields = new RequestFields();
        fields.Thinking(request.Thinking?.Type is "enabled" or "adaptive");
        fields.Effort(request.OutputConfig?.Effort, "output_config.effort");
        fields.MaxOutputTokens(request.MaxTokens, "max_tokens");
        fields.Stop(request.StopSequences, "stop_sequences");
        fields.Ignore("temperature", request.Temperature);
        fields.Ignore("top_p", request.TopP);
        fields.Ignore("top_k", request.TopK);
        fields.Unknown(request.Unknown);
        return fields;
    }

    internal override AnswerWriter CreateWriter(DialectRequest request, DialectServices services, long startTimestamp) =>
        new Writer(request, services.TimeProvider, startTimestamp);

    private static string? ChoiceMode(string? type) => type switch
    {
        null or "auto" => "auto",
        "any" => "required",
        "tool" => "function",
        "none" => "none",
        _ => throw new DialectRequestException($"tool_choice.type: '{type}' is not one of 'auto', 'any', 'tool', 'none'"),
    };

    private static List<ClaudeTool>? ToolsOf(List<AnthropicTool>? tools)
    {
        if (tools is null or { Count: 0 })
        {
            return null;
        }

        return FunctionTools.From([.. tools.Select(tool => tool.Type is null or "custom"
            ? new FunctionTool("function", new FunctionDefinition(tool.Name, tool.Description, tool.InputSchema))
            : throw new DialectRequestException($"tools: '{tool.Type}' is one of Anthropic's own tools, which the gateway does not run; only the client's functions are supported"))])
            ?.ToList();
    }

    /// <summary>The system prompt: a string, or text blocks.</summary>
    private static string SystemText(JsonElement system) => system.ValueKind switch
    {
        JsonValueKind.String => system.GetString()!,
        JsonValueKind.Array => string.Join("\n\n", system.EnumerateArray().Select(block => Blocks(block).Text ?? "")),
        JsonValueKind.Undefined or JsonValueKind.Null => "",
        _ => throw new DialectRequestException("system: must be a string or a list of text blocks"),
    };

    private static ClaudeMessage MessageOf(AnthropicMessage message)
    {
        var role = message.Role switch
        {
            "user" => ClaudeMessage.UserRole,
            "assistant" => ClaudeMessage.AssistantRole,
            _ => throw new DialectRequestException($"messages: role '{message.Role}' must be 'user' or 'assistant'"),
        };
        if (message.Content.ValueKind == JsonValueKind.String)
        {
            return new ClaudeMessage(role, message.Content.GetString()!);
        }

        if (message.Content.ValueKind != JsonValueKind.Array)
        {
            throw new DialectRequestException("messages: content must be a string or a list of content blocks");
        }

        var text = new StringBuilder();
        List<ClaudeImage>? images = null;
        List<ClaudeToolCall>? calls = null;
        List<ClaudeToolResult>? results = null;
        foreach (var block in message.Content.EnumerateArray().Select(Blocks))
        {
            switch (block.Type)
            {
                case "text":
                    text.Append(text.Length > 0 ? "\n" : "").Append(block.Text);
                    break;
                case "image" when role == ClaudeMessage.UserRole:
                    (images ??= []).Add(block.Source is { Type: "base64", Data: { } data }
                        ? ImageData.FromBase64(data)
                        : throw new DialectRequestException("image: only base64 sources are supported; URLs are not fetched"));
                    break;
                case "tool_use" when role == ClaudeMessage.AssistantRole:
                    (calls ??= []).Add(new ClaudeToolCall(
                        block.Id ?? throw new DialectRequestException("tool_use: id is required"),
                        block.Name ?? throw new DialectRequestException("tool_use: name is required"),
                        FunctionTools.ArgumentsText(block.Input)));
                    break;
                case "tool_result" when role == ClaudeMessage.UserRole:
                    (results ??= []).Add(new ClaudeToolResult(
                        block.ToolUseId ?? throw new DialectRequestException("tool_result: tool_use_id is required"),
                        ResultText(block.Content),
                        block.IsError == true));
                    break;
                case "thinking" or "redacted_thinking":
                    // The model's own thinking, sent back: the session it is in has it, a rebuilt one goes without.
                    break;
                default:
                    throw new DialectRequestException($"messages: content block type '{block.Type}' is not supported in a {message.Role} message");
            }
        }

        return new ClaudeMessage(role, text.ToString(), images, calls, results);
    }

    /// <summary>A tool result's content: a string, or text blocks.</summary>
    private static string ResultText(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString()!,
        JsonValueKind.Array => string.Join("\n", content.EnumerateArray().Select(Blocks).Select(block => block.Type switch
        {
            "text" => block.Text,
            // A function's image (Claude Code's Read of a picture) cannot be passed on as a function result yet: the
            // model is told, rather than the conversation failing on every later request that sends it back.
            "image" or "document" => $"[{block.Type} returned by the tool; not passed on by ClaudeProxy]",
            _ => throw new DialectRequestException($"tool_result: content block type '{block.Type}' is not supported"),
        })),
        JsonValueKind.Undefined or JsonValueKind.Null => "",
        _ => throw new DialectRequestException("tool_result: content must be a string or a list of text blocks"),
    };

    private static AnthropicBlock Blocks(JsonElement block) => DialectJson.Deserialize(block, DialectJsonContext.Default.AnthropicBlock, "content block");

    /// <summary>
    /// The stream as the API sends it: <c>message_start</c>, a <c>ping</c>, each content block started, filled and
    /// stopped in turn (thinking, text, each <c>tool_use</c> with its input as one JSON delta), then
    /// <c>message_delta</c> with the stop reason and the CLI's usage, and <c>message_stop</c>.
    /// </summary>
    private sealed class Writer(DialectRequest request, TimeProvider timeProvider, long startTimestamp)
        : AnswerWriter(request, timeProvider, startTimestamp)
    {
        private readonly string _id = "msg_" + Guid.NewGuid().ToString("N")[..24];
        private bool _started;
        private int _index = -1;
        private string? _open;

        protected override void WriteText(string text, IBufferWriter<byte> output)
        {
            Open("text", new AnthropicText(""), output);
            JsonOutput.WriteSseEvent(output, "content_block_delta", new AnthropicContentBlockDelta(_index, new AnthropicTextDelta(text)), DialectJsonContext.Default.AnthropicContentBlockDelta);
        }

        protected override void WriteThinking(string thinking, IBufferWriter<byte> output)
        {
            Open("thinking", new AnthropicThinking(""), output);
            JsonOutput.WriteSseEvent(output, "content_block_delta", new AnthropicContentBlockDelta(_index, new AnthropicThinkingDelta(thinking)), DialectJsonContext.Default.AnthropicContentBlockDelta);
        }

        protected override void WriteToolCall(ToolCallRequested call, IBufferWriter<byte> output)
        {
            Open("tool_use", new AnthropicToolUse(call.Call.Id, call.Call.Name, FunctionTools.ArgumentsObject("{}")), output);
            JsonOutput.WriteSseEvent(output, "content_block_delta", new AnthropicContentBlockDelta(_index, new AnthropicInputJsonDelta(call.Call.Arguments)), DialectJsonContext.Default.AnthropicContentBlockDelta);
            Close(output);
        }

        protected override void WriteCompleted(ClaudeTurnResult result, IBufferWriter<byte> output)
        {
            Start(output);
            Close(output);
            JsonOutput.WriteSseEvent(output, "message_delta", new AnthropicMessageDelta(new AnthropicStopDelta(StopReason(result), result.StopSequence), Usage(result)), DialectJsonContext.Default.AnthropicMessageDelta);
            output.Write("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"u8);
        }

        /// <summary>The API's own way: an <c>error</c> event, the last thing the client reads.</summary>
        protected override void WriteStreamError(ClaudeBackendError error, IBufferWriter<byte> output)
        {
            output.Write("event: error\ndata: "u8);
            output.Write(ErrorEnvelopes.Create(ErrorStyle.Anthropic, error));
            output.Write("\n\n"u8);
        }

        public override void WriteAnswer(ClaudeTurnResult result, string thinking, IBufferWriter<byte> output)
        {
            List<AnthropicContent> content = [];
            if (thinking.Length > 0)
            {
                content.Add(new AnthropicThinking(thinking));
            }

            if (result.Text.Length > 0 || result.ToolCalls is not { Count: > 0 })
            {
                content.Add(new AnthropicText(result.Text));
            }

            content.AddRange((result.ToolCalls ?? []).Select(call => new AnthropicToolUse(call.Id, call.Name, FunctionTools.ArgumentsObject(call.Arguments))));
            JsonOutput.WriteJson(output, new AnthropicResponse(_id, Request.RequestedModel, content, StopReason(result), Usage(result), result.StopSequence), DialectJsonContext.Default.AnthropicResponse);
        }

        private static string StopReason(ClaudeTurnResult result) =>
            result.ToolCalls is { Count: > 0 } ? ClaudeTurnResult.ToolUseStopReason : result.StopReason ?? "end_turn";

        private static AnthropicUsage Usage(ClaudeTurnResult result) =>
            new(result.Usage.InputTokens, result.Usage.OutputTokens, result.Usage.CacheReadInputTokens, result.Usage.CacheCreationInputTokens);

        /// <summary>The first frames of the stream, once: the message (usage follows at its end) and a ping.</summary>
        private void Start(IBufferWriter<byte> output)
        {
            if (_started)
            {
                return;
            }

            _started = true;
            JsonOutput.WriteSseEvent(output, "message_start", new AnthropicMessageStart(new AnthropicResponse(_id, Request.RequestedModel, [], null, new AnthropicUsage(0, 0))), DialectJsonContext.Default.AnthropicMessageStart);
            output.Write("event: ping\ndata: {\"type\":\"ping\"}\n\n"u8);
        }

        /// <summary>Starts a block of <paramref name="kind"/> unless one is open, closing another kind first.</summary>
        private void Open(string kind, AnthropicContent block, IBufferWriter<byte> output)
        {
            Start(output);
            if (_open == kind && kind != "tool_use")
            {
                return;
            }

            Close(output);
            _open = kind;
            _index++;
            JsonOutput.WriteSseEvent(output, "content_block_start", new AnthropicContentBlockStart(_index, block), DialectJsonContext.Default.AnthropicContentBlockStart);
        }

        private void Close(IBufferWriter<byte> output)
        {
            if (_open is null)
            {
                return;
            }

            _open = null;
            JsonOutput.WriteSseEvent(output, "content_block_stop", new AnthropicContentBlockStop(_index), DialectJsonContext.Default.AnthropicContentBlockStop);
        }
    }
}
