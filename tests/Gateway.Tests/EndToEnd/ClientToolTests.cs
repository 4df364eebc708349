using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models.Chat;
using OpenAI;
using OpenAI.Chat;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;
using ChatRole = OllamaSharp.Models.Chat.ChatRole;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>
/// The client's own functions, called by the model through the real CLI (the fake API's <c>agent</c> mode scripts the
/// calls: a parallel round, then one more), each result going back on the process that waits for it.
/// </summary>
public sealed class ClientToolTests : IAsyncLifetime
{
    private FakeAnthropicServer _api = null!;
    private GatewayApp _app = null!;
    private Uri _baseAddress = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        RealCli.EnsureInstalled();
        _api = await FakeAnthropicServer.StartAsync("--reply", "agent", "--chunk-chars", "7");
        _app = GatewayApp.WithRealCli(_api, kestrel: true);
        using var client = _app.CreateClient();
        _baseAddress = client.BaseAddress!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_openai_sdk_runs_two_rounds_with_a_parallel_first_round_on_one_process(bool stream)
    {
        var chat = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_baseAddress, "/v1") });
        var options = new ChatCompletionOptions { Tools = { WeatherTool(), TimeTool() } };
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage(TwoRoundAgent.Prompt)];

        var rounds = new List<IReadOnlyList<(string Id, string Name, string Arguments)>>();
        string answer;
        while (true)
        {
            var (finish, text, calls) = stream ? await StreamAsync(chat, messages, options) : await CompleteAsync(chat, messages, options);
            if (finish != ChatFinishReason.ToolCalls)
            {
                Assert.Equal(ChatFinishReason.Stop, finish);
                answer = text;
                break;
            }

            rounds.Add(calls);
            messages.Add(new AssistantChatMessage(calls.Select(c => ChatToolCall.CreateFunctionToolCall(c.Id, c.Name, BinaryData.FromString(c.Arguments))).ToList()));
            messages.AddRange(calls.Select(c => new ToolChatMessage(c.Id, Run(c.Name, c.Arguments))));
        }

        Assert.Equal([["get_weather:Paris", "get_time:CET"], ["get_weather:Rome"]], rounds.Select(r => r.Select(c => $"{c.Name}:{FirstValue(c.Arguments)}").ToList()));
        Assert.StartsWith("done after 2 rounds", answer);
        Assert.Contains("sunny in Paris", answer);
        Assert.Contains("12:00 in CET", answer);
        Assert.Contains("sunny in Rome", answer);
        AssertModelGotEachResultForItsCall(rounds.SelectMany(r => r).Select(c => (c.Id, Run(c.Name, c.Arguments))));
        AssertOneSession();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OllamaSharp_runs_two_rounds_with_a_parallel_first_round_on_one_process(bool stream)
    {
        var ollama = new OllamaApiClient(_baseAddress);
        List<Message> messages = [new Message(ChatRole.User, TwoRoundAgent.Prompt)];
        var tools = new[] { OllamaTool("get_weather", "city"), OllamaTool("get_time", "zone") };

        var rounds = new List<List<Message.ToolCall>>();
        string answer;
        while (true)
        {
            var request = new ChatRequest { Model = "claude-sonnet:latest", Messages = messages, Tools = tools, Stream = stream };
            List<ChatResponseStream?> chunks = [];
            await foreach (var chunk in ollama.ChatAsync(request, Cancel))
            {
                chunks.Add(chunk);
            }

            var done = Assert.IsType<ChatDoneResponseStream>(chunks[^1]);
            Assert.Equal("stop", done.DoneReason);
            var calls = chunks.SelectMany(c => c?.Message.ToolCalls ?? []).ToList();
            if (calls.Count == 0)
            {
                answer = string.Concat(chunks.Select(c => c?.Message.Content));
                break;
            }

            rounds.Add(calls);
            messages.Add(new Message(ChatRole.Assistant, "") { ToolCalls = calls });
            // As Ollama's own clients do: the result names its function, not its call.
            messages.AddRange(calls.Select(c => new Message(ChatRole.Tool, Run(c.Function!.Name!, JsonSerializer.Serialize(c.Function.Arguments))) { ToolName = c.Function.Name }));
        }

        Assert.Equal([["get_weather:Paris", "get_time:CET"], ["get_weather:Rome"]], rounds.Select(r => r.Select(c => $"{c.Function!.Name}:{c.Function.Arguments!.Values.First()}").ToList()));
        Assert.Equal([[0, 1], [0]], rounds.Select(r => r.Select(c => c.Function!.Index ?? -1).ToList()));
        Assert.StartsWith("done after 2 rounds", answer);
        Assert.Contains("sunny in Rome", answer);
        AssertOneSession();
    }

    [Fact]
    public async Task A_function_invoking_agent_over_either_sdk_runs_real_functions_to_an_answer()
    {
        IChatClient[] clients =
        [
            new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_baseAddress, "/v1") }).GetChatClient("claude-sonnet:latest").AsIChatClient(),
            new OllamaApiClient(_baseAddress, "claude-sonnet:latest"),
        ];

        foreach (var inner in clients)
        {
            await TwoRoundAgent.RunAsync(inner, stream: false, Cancel);
        }
    }

    [Fact]
    public async Task Results_sent_after_the_waiting_process_is_gone_reach_the_model_as_real_tool_results()
    {
        await using var app = GatewayApp.WithRealCli(_api, configure: s => s["ClaudeBackend:ToolResultTimeout"] = "00:00:01");
        using var http = app.CreateClient();
        var request = new Dictionary<string, object?>
        {
            ["model"] = "claude-sonnet:latest",
            ["messages"] = new List<object> { new { role = "user", content = "weather?\ncall:get_weather:{\"city\":\"Oslo\"}" } },
            ["tools"] = new[] { new { type = "function", function = new { name = "get_weather", parameters = new { type = "object", properties = new { city = new { type = "string" } } } } } },
        };
        var first = await (await http.PostAsJsonAsync("/v1/chat/completions", request, Cancel)).Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var call = first.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Single(ProcessProbe.FindStartedByGateway(app.Marker));

        // The wait is over: the process that held the call is ended.
        Assert.Empty(await ProcessProbe.WaitUntilGoneAsync(app.Marker, TimeSpan.FromSeconds(20)));
        var messages = (List<object>)request["messages"]!;
        messages.Add(new { role = "assistant", content = (string?)null, tool_calls = new[] { call } });
        messages.Add(new { role = "tool", tool_call_id = call.GetProperty("id").GetString(), content = "fog in Oslo" });
        var second = await http.PostAsJsonAsync("/v1/chat/completions", request, Cancel);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var answer = (await second.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.StartsWith("done after 1 rounds", answer);
        Assert.Contains("fog in Oslo", answer);
        var last = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("tool_use", last[^2].GetProperty("content")[0].GetProperty("type").GetString());
        Assert.Equal("fog in Oslo", ToolResultText(last[^1].GetProperty("content")[0]));
    }

    [Fact]
    public async Task Results_for_a_conversation_with_an_id_sent_after_its_waiting_process_is_gone_reach_the_model_once_after_the_question()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        await using var app = GatewayApp.WithRealCli(_api, configure: s => (s["ClaudeBackend:ToolResultTimeout"], s["ClaudeBackend:Redis"]) = ("00:00:01", redis.Configuration));
        using var http = app.CreateClient();
        var tools = new[] { new { type = "function", function = new { name = "get_weather", parameters = new { type = "object", properties = new { city = new { type = "string" } } } } } };
        var messages = new List<object> { new { role = "user", content = "hello there" } };
        var greeting = await (await http.PostAsJsonAsync("/v1/chat/completions", new { model = "claude-sonnet:latest", id = "replayed-here", messages, tools }, Cancel)).Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var greetingText = greeting.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        messages.Add(new { role = "assistant", content = greetingText });
        messages.Add(new { role = "user", content = "weather?\ncall:get_weather:{\"city\":\"Oslo\"}" });
        var first = await (await http.PostAsJsonAsync("/v1/chat/completions", new { model = "claude-sonnet:latest", id = "replayed-here", messages, tools }, Cancel)).Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var call = first.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];

        // The wait is over: the process that held the call is stopped, and the same gateway, which keeps the
        // conversation's session, takes the results.
        await WaitUntilTheWaitIsOverAsync(app);
        messages.Add(new { role = "assistant", content = (string?)null, tool_calls = new[] { call } });
        messages.Add(new { role = "tool", tool_call_id = call.GetProperty("id").GetString(), content = "fog in Oslo" });
        var second = await http.PostAsJsonAsync("/v1/chat/completions", new { model = "claude-sonnet:latest", id = "replayed-here", messages, tools }, Cancel);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var answer = (await second.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.StartsWith("done after 1 rounds", answer);
        // The model saw the conversation as the client has it: the greeting, the question once, the call and its result.
        var sent = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().Select(Describe).ToList();
        Assert.Equal(["user:hello there", "assistant:text", "user:weather?", "assistant:tool_use", "user:tool_result"], sent);
        // The shared store keeps it so too, each message once, and the answer.
        var kept = Assert.Single(await redis.ListsAsync("claudeproxy:conversation:*")).Select(item => ClaudeBackendContract.ParseMessage(item)).ToList();
        Assert.Equal(["hello there", greetingText, "weather?", "", "", answer], kept.Select(m => m.Text.Split('\n')[0]));
        Assert.Equal("fog in Oslo", Assert.Single(kept[4].ToolResults!).Content);
        Assert.Empty(_api.UnpairedToolBlocks());
    }

    [Fact]
    public async Task Results_that_a_client_of_ids_sends_without_them_after_the_waiting_process_is_gone_reach_the_model_once_after_the_question()
    {
        using var redis = await RedisServer.StartOrSkipAsync();
        await using var app = GatewayApp.WithRealCli(_api, configure: s => (s["ClaudeBackend:ToolResultTimeout"], s["ClaudeBackend:Redis"]) = ("00:00:01", redis.Configuration));
        using var http = app.CreateClient();
        const string Question = """{"role":"user","content":"weather?\ncall:get_weather:{\"city\":\"Oslo\"}"}""";
        // Only what is new each time, and no ids, as a client of the original server's ids sends it.
        const string Tools = """[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""";
        static StringContent Chat(string messages) => new(
            $$"""{"model":"claude-sonnet:latest","id":"unanswered","stream":false,"tools":{{Tools}},"messages":[{{messages}}]}""",
            System.Text.Encoding.UTF8,
            "application/json");
        using var hello = await http.PostAsync("/api/chat", Chat("""{"role":"user","content":"hello there"}"""), Cancel);
        using var asked = await http.PostAsync("/api/chat", Chat(Question), Cancel);
        var function = (await asked.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function");

        await WaitUntilTheWaitIsOverAsync(app);
        using var done = await http.PostAsync("/api/chat", Chat($$"""
            {{Question}},{"role":"assistant","content":"","tool_calls":[{"function":{{function.GetRawText()}}}]},{"role":"tool","tool_name":"get_weather","content":"fog in Oslo"}
            """), Cancel);

        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        Assert.StartsWith("done after 1 rounds", (await done.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString(), StringComparison.Ordinal);
        // Not the session that waited, which the CLI would show the model with its calls refused: the greeting from the
        // shared store, then the question once, its call and the client's result.
        var sent = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().Select(Describe).ToList();
        Assert.Equal(["user:hello there", "assistant:text", "user:weather?", "assistant:tool_use", "user:tool_result"], sent);
        Assert.Empty(_api.UnpairedToolBlocks());
    }

    /// <summary>Waits until the gateway has stopped a turn's wait for function results (<c>ToolResultTimeout</c>).</summary>
    private static async Task WaitUntilTheWaitIsOverAsync(GatewayApp app)
    {
        using var waited = CancellationTokenSource.CreateLinkedTokenSource(Cancel);
        waited.CancelAfter(TimeSpan.FromSeconds(20));
        while (!app.Logs.Any(l => l.Contains("got none within", StringComparison.Ordinal)))
        {
            await Task.Delay(50, waited.Token);
        }
    }

    /// <summary>A message the model was sent, in short: its role and its first block's text's first line, or the block's type.</summary>
    private static string Describe(JsonElement message)
    {
        var content = message.GetProperty("content");
        var first = content.ValueKind == JsonValueKind.String ? content : content.EnumerateArray().First(b => b.GetProperty("type").GetString() != "text" || !b.GetProperty("text").GetString()!.StartsWith("<system-reminder>", StringComparison.Ordinal));
        var what = first.ValueKind == JsonValueKind.String ? first.GetString()!
            : first.GetProperty("type").GetString() == "text" && message.GetProperty("role").GetString() == "user" ? first.GetProperty("text").GetString()!
            : first.GetProperty("type").GetString()!;
        return $"{message.GetProperty("role").GetString()}:{what.Split('\n')[0]}";
    }

    [Fact]
    public async Task A_finished_round_in_a_history_no_session_holds_reaches_the_model_as_real_blocks()
    {
        var chat = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_baseAddress, "/v1") });
        var options = new ChatCompletionOptions { Tools = { WeatherTool() } };
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("weather?\ncall:get_weather:{\"city\":\"Kyiv\"}")];
        ChatCompletion calls = await chat.CompleteChatAsync(messages, options, Cancel);
        messages.Add(new AssistantChatMessage(calls));
        messages.Add(new ToolChatMessage(calls.ToolCalls[0].Id, "snow in Kyiv"));
        ChatCompletion answer = await chat.CompleteChatAsync(messages, options, Cancel);
        messages.Add(new AssistantChatMessage(answer));
        messages.Add(new UserChatMessage("thanks, and tomorrow?"));

        // Another gateway, with a store of its own: nothing holds this history, so it is written as a session.
        await using var other = GatewayApp.WithRealCli(_api, kestrel: true);
        using var http = other.CreateClient();
        var fresh = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1") });
        ChatCompletion next = await fresh.CompleteChatAsync(messages, options, Cancel);

        Assert.Equal("thanks, and tomorrow?", next.Content[0].Text);
        var sent = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray().ToList();
        var toolUse = sent.SelectMany(m => m.GetProperty("content") is { ValueKind: JsonValueKind.Array } c ? c.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .Single(b => b.GetProperty("type").GetString() == "tool_use");
        Assert.Equal("mcp__client__get_weather", toolUse.GetProperty("name").GetString());
        Assert.Equal("Kyiv", toolUse.GetProperty("input").GetProperty("city").GetString());
        AssertModelGotEachResultForItsCall([(toolUse.GetProperty("id").GetString()!, "snow in Kyiv")]);
    }

    [Fact]
    public async Task A_result_for_a_call_nobody_made_and_a_bad_function_name_get_a_400_that_says_so()
    {
        using var http = _app.CreateClient();
        var tools = new[] { new { type = "function", function = new { name = "get_weather", parameters = new { type = "object" } } } };
        var unknown = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "claude-sonnet:latest",
            tools,
            messages = new object[] { new { role = "user", content = "hi" }, new { role = "tool", tool_call_id = "call_nobody", content = "42" } },
        }, Cancel);
        var badName = await http.PostAsJsonAsync("/api/chat", new
        {
            model = "claude-sonnet:latest",
            tools = new[] { new { type = "function", function = new { name = "get weather!", parameters = new { type = "object" } } } },
            messages = new[] { new { role = "user", content = "hi" } },
        }, Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("call_nobody", (await unknown.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        Assert.Contains("get weather!", (await badName.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Another_key_cannot_answer_a_call_that_waits_for_its_own_client()
    {
        await using var app = GatewayApp.WithRealCli(_api, configure: s =>
        {
            s["Gateway:ApiKeys:0:Name"] = "alice";
            s["Gateway:ApiKeys:0:Key"] = "sk-alice-0123456789abcdef";
            s["Gateway:ApiKeys:1:Name"] = "bob";
            s["Gateway:ApiKeys:1:Key"] = "sk-bob-0123456789abcdefgh";
        });
        var http = app.CreateClient();
        ChatClient As(string key) => new("claude-sonnet:latest", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1"), Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(http) });
        var options = new ChatCompletionOptions { Tools = { WeatherTool() } };
        List<OpenAI.Chat.ChatMessage> messages = [new UserChatMessage("weather?\ncall:get_weather:{\"city\":\"Lima\"}")];
        ChatCompletion paused = await As("sk-alice-0123456789abcdef").CompleteChatAsync(messages, options, Cancel);
        messages.Add(new AssistantChatMessage(paused));
        messages.Add(new ToolChatMessage(paused.ToolCalls[0].Id, "sunny in Lima"));

        ChatCompletion bobs = await As("sk-bob-0123456789abcdefgh").CompleteChatAsync(messages, options, Cancel);
        ChatCompletion alices = await As("sk-alice-0123456789abcdef").CompleteChatAsync(messages, options, Cancel);

        // Bob's copy was rebuilt in a session of his own; Alice's turn was still waiting in hers.
        Assert.StartsWith("done after 1 rounds", bobs.Content[0].Text);
        Assert.StartsWith("done after 1 rounds", alices.Content[0].Text);
        var sessions = _api.MessageRequestsWithSession().TakeLast(4).Select(r => r.SessionId).ToList();
        Assert.Equal(sessions[0], sessions[3]);
        Assert.NotEqual(sessions[0], sessions[1]);
    }

    private static async Task<(ChatFinishReason?, string, IReadOnlyList<(string Id, string Name, string Arguments)>)> CompleteAsync(ChatClient chat, List<OpenAI.Chat.ChatMessage> messages, ChatCompletionOptions options)
    {
        ChatCompletion completion = await chat.CompleteChatAsync(messages, options, Cancel);
        var text = completion.Content.Count > 0 ? completion.Content[0].Text : "";
        return (completion.FinishReason, text, completion.ToolCalls.Select(c => (c.Id, c.FunctionName, c.FunctionArguments.ToString())).ToList());
    }

    private static async Task<(ChatFinishReason?, string, IReadOnlyList<(string Id, string Name, string Arguments)>)> StreamAsync(ChatClient chat, List<OpenAI.Chat.ChatMessage> messages, ChatCompletionOptions options)
    {
        ChatFinishReason? finish = null;
        var text = "";
        var calls = new SortedDictionary<int, (string Id, string Name, string Arguments)>();
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options, Cancel))
        {
            finish ??= update.FinishReason;
            text += string.Concat(update.ContentUpdate.Select(p => p.Text));
            foreach (var part in update.ToolCallUpdates)
            {
                (string Id, string Name, string Arguments) known = calls.TryGetValue(part.Index, out var seen) ? seen : ("", "", "");
                calls[part.Index] = (part.ToolCallId ?? known.Id, part.FunctionName ?? known.Name, known.Arguments + part.FunctionArgumentsUpdate?.ToString());
            }
        }

        return (finish, text, calls.Values.ToList());
    }

    private static ChatTool WeatherTool() => ChatTool.CreateFunctionTool(
        "get_weather", "weather for a city", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));

    private static ChatTool TimeTool() => ChatTool.CreateFunctionTool(
        "get_time", "time in a zone", BinaryData.FromString("""{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}"""));

    private static OllamaSharp.Models.Chat.Tool OllamaTool(string name, string parameter) => new()
    {
        Function = new Function
        {
            Name = name,
            Description = name,
            Parameters = new Parameters { Properties = new Dictionary<string, Property> { [parameter] = new() { Type = "string" } }, Required = [parameter] },
        },
    };

    /// <summary>The client's side of a function: what it gives back for a call.</summary>
    private static string Run(string name, string arguments) =>
        name == "get_time" ? $"12:00 in {FirstValue(arguments)}" : $"sunny in {FirstValue(arguments)}";

    private static string FirstValue(string arguments) =>
        JsonDocument.Parse(arguments).RootElement.EnumerateObject().First().Value.ToString();

    private static string ToolResultText(JsonElement block) =>
        block.GetProperty("content") is { ValueKind: JsonValueKind.String } text ? text.GetString()! : block.GetProperty("content")[0].GetProperty("text").GetString()!;

    /// <summary>Every result the client sent reached the model as the <c>tool_result</c> of the call it answers.</summary>
    private void AssertModelGotEachResultForItsCall(IEnumerable<(string Id, string Result)> answered)
    {
        var results = _api.MessageRequests()[^1].GetProperty("messages").EnumerateArray()
            .SelectMany(m => m.GetProperty("content") is { ValueKind: JsonValueKind.Array } content ? content.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .Where(b => b.GetProperty("type").GetString() == "tool_result")
            .ToDictionary(b => b.GetProperty("tool_use_id").GetString()!, ToolResultText);
        foreach (var (id, result) in answered)
        {
            Assert.Equal(result, results[id]);
        }

        Assert.Empty(_api.UnpairedToolBlocks());
    }

    /// <summary>The loop's three API requests came from one CLI session: the paused process went on, nothing was replayed.</summary>
    private void AssertOneSession()
    {
        var sessions = _api.MessageRequestsWithSession().TakeLast(3).Select(r => r.SessionId).ToList();
        Assert.Single(sessions.Distinct());
        Assert.NotNull(sessions[0]);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        await _api.DisposeAsync();
    }
}
