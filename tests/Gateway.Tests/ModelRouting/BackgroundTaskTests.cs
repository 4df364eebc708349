using System.Net;
using System.Text.Json;
using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.ModelRouting;

/// <summary>Open WebUI's background tasks, recognised by its task templates and answered by the model's <c>TaskModel</c>.</summary>
public sealed class BackgroundTaskTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    // The openings of Open WebUI's templates (DEFAULT_TITLE_GENERATION_PROMPT_TEMPLATE and its siblings), as it sends them.
    private const string Title = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n### Guidelines:\n- Write the title in the chat's primary language.\n### Output:\nJSON format: { \"title\": \"your concise title here\" }\n### Chat History:\n<chat_history>\nUSER: Why is the sky blue?\nASSISTANT: Rayleigh scattering.\n</chat_history>";
    private const string Tags = "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.\n### Chat History:\n<chat_history>\nUSER: hi\n</chat_history>";
    private const string FollowUps = "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next in this conversation as a **user**, based on the chat history, to help continue or deepen the discussion.\n### Chat History:\n<chat_history>\nUSER: hi\n</chat_history>";
    private const string Autocomplete = "### Task:\nYou are an autocompletion system. Continue the text in `<text>` based on the **completion type** in `<type>` and the given language.\n<type>General</type>\n<text>Why is the</text>";

    [Theory]
    [InlineData(Title, true)]
    [InlineData(Tags, true)]
    [InlineData(FollowUps, true)]
    [InlineData(Autocomplete, true)]
    [InlineData("### Task:\nWrite me a poem about tasks.", false)]
    [InlineData("Summarise this: <chat_history>USER: hi</chat_history>", false)]
    public void A_request_is_a_background_task_when_its_last_user_message_is_one_of_open_webuis_task_templates(string text, bool isTask)
    {
        var body = JsonSerializer.SerializeToNode(new { model = "m", stream = false, messages = new object[] { new { role = "system", content = "today" }, new { role = "user", content = text } } })!.AsObject();
        var blocks = JsonSerializer.SerializeToNode(new { model = "m", messages = new object[] { new { role = "user", content = new object[] { new { type = "text", text } } } } })!.AsObject();
        var earlier = JsonSerializer.SerializeToNode(new { model = "m", messages = new object[] { new { role = "user", content = text }, new { role = "assistant", content = "ok" } } })!.AsObject();

        Assert.Equal(isTask, BackgroundTask.IsOne(body));
        Assert.Equal(isTask, BackgroundTask.IsOne(blocks));
        Assert.False(BackgroundTask.IsOne(earlier));
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"assistant","tool_calls":[{"function":{"name":"w","arguments":{}}}]},{"role":"tool","content":"sunny"}]}""", true)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"sunny"}]}]}""", true)]
    [InlineData("""{"model":"m","input":[{"role":"user","content":"weather?"},{"type":"function_call_output","call_id":"c1","output":"sunny"}]}""", true)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"weather?"}]}""", false)]
    [InlineData("""{"model":"m","input":"weather?"}""", false)]
    public void A_request_that_brings_function_results_continues_a_running_turn(string json, bool continues)
    {
        Assert.Equal(continues, BackgroundTask.ContinuesATurn(System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject()));
    }

    [Fact]
    public async Task A_body_that_is_not_json_after_its_model_is_the_dialects_400_not_a_500()
    {
        await using var app = GatewayApp.WithFakeCli(configure: s => s["ClaudeBackend:Models:0:TaskModel"] = "claude-haiku:latest");

        using var response = await app.CreateClient().PostAsync("/api/chat", new StringContent("""{"model":"claude-sonnet:latest", not json""", System.Text.Encoding.UTF8, "application/json"), Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_title_request_for_sonnet_is_answered_by_its_task_model_and_a_chat_is_not()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: s => s["ClaudeBackend:Models:0:TaskModel"] = "claude-haiku:latest");
        using var client = app.CreateClient();
        string Request(string text) => JsonSerializer.Serialize(new { model = "claude-sonnet:latest", stream = false, messages = new[] { new { role = "user", content = text } } });

        using var title = await client.PostAsync("/api/chat", new StringContent(Request(Title), System.Text.Encoding.UTF8, "application/json"), Cancel);
        var titleModel = api.MessageRequests()[^1].GetProperty("model").GetString();
        using var chat = await client.PostAsync("/api/chat", new StringContent(Request("Why is the sky blue?"), System.Text.Encoding.UTF8, "application/json"), Cancel);
        var chatModel = api.MessageRequests()[^1].GetProperty("model").GetString();

        Assert.Equal(HttpStatusCode.OK, title.StatusCode);
        Assert.Equal("claude-haiku:latest", title.Headers.GetValues("x-claudeproxy-task-model").Single());
        Assert.Contains("haiku", titleModel, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        Assert.False(chat.Headers.Contains("x-claudeproxy-task-model"));
        Assert.Contains("sonnet", chatModel, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_task_model_on_ollama_answers_the_tasks_there()
    {
        using var ollama = FakeOllama.Start();
        ollama.StreamLines("/api/chat", FakeOllama.ChatLines, TimeSpan.Zero);
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, configure: s =>
        {
            GatewayApp.WithOllama(ollama.Url)(s);
            s["ClaudeBackend:Models:0:TaskModel"] = "llama3.2:3b";
        });

        using var title = await app.CreateClient().PostAsync("/api/chat", new StringContent(
            JsonSerializer.Serialize(new { model = "claude-sonnet:latest", messages = new[] { new { role = "user", content = Tags } } }), System.Text.Encoding.UTF8, "application/json"), Cancel);

        Assert.Equal(HttpStatusCode.OK, title.StatusCode);
        Assert.Equal("llama3.2:3b", JsonDocument.Parse(ollama.LastRequestTo("/api/chat").Body!).RootElement.GetProperty("model").GetString());
        Assert.Empty(api.MessageRequests());
    }
}
