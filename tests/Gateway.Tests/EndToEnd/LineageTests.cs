using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using CsCheck;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using OllamaSharp;
using OllamaSharp.Models.Chat;
using OpenAI;
using OpenAI.Chat;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>
/// Conversations without an id, as most clients send them: the whole history each turn. The real CLI behind the gateway
/// talks to the fake Anthropic API, whose log shows what the model was sent.
/// </summary>
public sealed class LineageTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_chat_without_an_id_reaches_the_model_as_its_real_messages_and_each_branch_keeps_to_itself()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var http = app.CreateClient();
        var chat = new ChatClient("claude-sonnet:latest", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1") });

        async Task<(List<(string Role, string Text)> Sent, string? Session)> TurnAsync(params ChatMessage[] messages)
        {
            var answer = await chat.CompleteChatAsync(messages, cancellationToken: Cancel);
            Assert.Equal(ChatFinishReason.Stop, answer.Value.FinishReason);
            var (body, session) = api.MessageRequestsWithSession()[^1];
            return (SentMessages(body), session);
        }

        ChatMessage[] first = [new UserChatMessage("one")];
        await TurnAsync(first);
        ChatMessage[] second = [.. first, new AssistantChatMessage("one"), new UserChatMessage("two")];
        var (sentSecond, sessionSecond) = await TurnAsync(second);
        ChatMessage[] third = [.. second, new AssistantChatMessage("two"), new UserChatMessage("three")];
        var (sentThird, sessionThird) = await TurnAsync(third);

        // Every earlier turn reaches the model as the message it was, in its role; the session goes on.
        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two")], sentSecond);
        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two"), ("assistant", "two"), ("user", "three")], sentThird);
        Assert.Equal(sessionSecond, sessionThird);

        // A regenerated answer and an edited question are branches of their own: nothing of the other branch reaches the model.
        var (regenerated, regeneratedSession) = await TurnAsync(second);
        Assert.Equal(sentSecond, regenerated);
        Assert.NotEqual(sessionThird, regeneratedSession);
        var (edited, _) = await TurnAsync([.. first, new AssistantChatMessage("one"), new UserChatMessage("two, edited")]);
        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two, edited")], edited);

        // The first branch goes on in its own session.
        var (fourth, sessionFourth) = await TurnAsync([.. third, new AssistantChatMessage("three"), new UserChatMessage("four")]);
        Assert.Equal(7, fourth.Count);
        Assert.Equal(("user", "four"), fourth[^1]);
        Assert.Equal(sessionThird, sessionFourth);
    }

    [Fact]
    public async Task Two_chats_that_start_with_the_same_words_stay_apart()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var http = app.CreateClient();
        var ollama = new OllamaApiClient(http.BaseAddress!);

        async Task<List<(string Role, string Text)>> TurnAsync(params Message[] messages)
        {
            var answer = await ollama.ChatAsync(new ChatRequest { Model = "claude-sonnet:latest", Stream = false, Messages = messages }, Cancel).StreamToEndAsync();
            Assert.Equal(messages[^1].Content, answer?.Message.Content);
            return SentMessages(api.MessageRequests()[^1]);
        }

        Message[] start = [new(ChatRole.User, "hello"), new(ChatRole.Assistant, "hello")];
        await TurnAsync([.. start, new(ChatRole.User, "about apples")]);
        await TurnAsync([.. start, new(ChatRole.User, "about pears")]);
        var apples = await TurnAsync([.. start, new(ChatRole.User, "about apples"), new(ChatRole.Assistant, "about apples"), new(ChatRole.User, "more apples")]);
        var pears = await TurnAsync([.. start, new(ChatRole.User, "about pears"), new(ChatRole.Assistant, "about pears"), new(ChatRole.User, "more pears")]);

        Assert.Equal(["hello", "hello", "about apples", "about apples", "more apples"], apples.Select(m => m.Text));
        Assert.Equal(["hello", "hello", "about pears", "about pears", "more pears"], pears.Select(m => m.Text));
    }

    [Fact]
    public async Task A_chat_without_an_id_goes_on_in_its_session_after_a_restart_and_only_for_its_own_api_key()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        Action<Dictionary<string, string?>> keys = s =>
        {
            s["Gateway:ApiKeys:0:Name"] = "alice";
            s["Gateway:ApiKeys:0:Key"] = "alice-key-0123456789abcdef";
            s["Gateway:ApiKeys:1:Name"] = "bob";
            s["Gateway:ApiKeys:1:Key"] = "bob-key-0123456789abcdef00";
        };
        const string second = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"one"},{"role":"assistant","content":"one"},{"role":"user","content":"two"}]}""";
        const string third = """{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"one"},{"role":"assistant","content":"one"},{"role":"user","content":"two"},{"role":"assistant","content":"two"},{"role":"user","content":"three"}]}""";
        GatewayApp first;
        string? session;
        await using (first = GatewayApp.WithRealCli(api, configure: keys))
        {
            using var alice = first.CreateClient();
            alice.DefaultRequestHeaders.Authorization = new("Bearer", "alice-key-0123456789abcdef");
            using var response = await alice.PostAsync("/api/chat", StreamingReads.Json(second), Cancel);
            Assert.True(response.IsSuccessStatusCode);
            session = api.MessageRequestsWithSession()[^1].SessionId;
        }

        await using var restarted = GatewayApp.WithRealCli(api, sameStoreAs: first, configure: keys);
        using var bob = restarted.CreateClient();
        bob.DefaultRequestHeaders.Authorization = new("Bearer", "bob-key-0123456789abcdef00");
        using (var response = await bob.PostAsync("/api/chat", StreamingReads.Json(third), Cancel))
        {
            Assert.True(response.IsSuccessStatusCode);
        }

        // Bob's identical history is his own: a session of its own, written from what he sent.
        Assert.NotEqual(session, api.MessageRequestsWithSession()[^1].SessionId);
        using var alice2 = restarted.CreateClient();
        alice2.DefaultRequestHeaders.Authorization = new("Bearer", "alice-key-0123456789abcdef");
        using (var response = await alice2.PostAsync("/api/chat", StreamingReads.Json(third), Cancel))
        {
            Assert.True(response.IsSuccessStatusCode);
        }

        var (body, continued) = api.MessageRequestsWithSession()[^1];
        Assert.Equal(session, continued);
        Assert.Equal(5, SentMessages(body).Count);
    }

    [Fact]
    public async Task A_regenerated_answer_in_a_conversation_with_an_id_never_shows_the_model_the_answer_it_replaces()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);
        using var http = app.CreateClient();

        async Task<(List<(string Role, string Text)> Sent, string? Session)> TurnAsync(string messages)
        {
            using var response = await http.PostAsync("/api/chat", StreamingReads.Json($$"""{"model":"claude-sonnet:latest","id":"chat-7","stream":false,"messages":[{{messages}}]}"""), Cancel);
            Assert.True(response.IsSuccessStatusCode);
            var (body, session) = api.MessageRequestsWithSession()[^1];
            return (SentMessages(body), session);
        }

        const string Second = """{"role":"user","content":"one"},{"role":"assistant","content":"one"},{"role":"user","content":"two"}""";
        await TurnAsync("""{"role":"user","content":"one"}""");
        var (_, first) = await TurnAsync(Second);
        var (regenerated, regeneratedSession) = await TurnAsync(Second);
        // A client that sends only its last message goes on in the branch the id now holds.
        var (next, nextSession) = await TurnAsync("""{"role":"user","content":"three"}""");

        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two")], regenerated);
        Assert.NotEqual(first, regeneratedSession);
        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two"), ("assistant", "two"), ("user", "three")], next);
        Assert.Equal(regeneratedSession, nextSession);
    }

    [Fact]
    public async Task Open_WebUIs_chat_id_header_keeps_two_chats_that_said_the_same_apart_while_the_history_decides()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);
        using var http = app.CreateClient();

        async Task<string?> TurnAsync(string chatId, string messages)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = StreamingReads.Json($$"""{"model":"claude-sonnet:latest","stream":false,"messages":[{{messages}}]}""") };
            request.Headers.Add("X-OpenWebUI-Chat-Id", chatId);
            using var response = await http.SendAsync(request, Cancel);
            Assert.True(response.IsSuccessStatusCode);
            return api.MessageRequestsWithSession()[^1].SessionId;
        }

        const string Same = """{"role":"user","content":"hi"},{"role":"assistant","content":"hi"},{"role":"user","content":"same"}""";
        var first = await TurnAsync("chat-a", Same);
        var second = await TurnAsync("chat-b", Same);
        var firstGoesOn = await TurnAsync("chat-a", Same + """,{"role":"assistant","content":"same"},{"role":"user","content":"a"}""");
        var secondGoesOn = await TurnAsync("chat-b", Same + """,{"role":"assistant","content":"same"},{"role":"user","content":"b"}""");
        // A task request (a title) tagged with the chat's id is no turn of the chat: only its own message reaches the model.
        await TurnAsync("chat-a", """{"role":"user","content":"### Task: a title for the chat"}""");

        Assert.NotEqual(first, second);
        Assert.Equal(first, firstGoesOn);
        Assert.Equal(second, secondGoesOn);
        Assert.Equal([("user", "### Task: a title for the chat")], SentMessages(api.MessageRequests()[^1]));
    }

    [Fact]
    public async Task A_question_the_client_abandoned_never_reaches_the_model_in_the_edited_branch()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api, kestrel: true);
        using var http = app.CreateClient();
        const string History = """{"role":"user","content":"one"},{"role":"assistant","content":"one"},{"role":"user","content":"two"},{"role":"assistant","content":"two"}""";
        using (var start = await http.PostAsync("/api/chat", StreamingReads.Json("""{"model":"claude-sonnet:latest","stream":false,"messages":[{"role":"user","content":"one"},{"role":"assistant","content":"one"},{"role":"user","content":"two"}]}"""), Cancel))
        {
            Assert.True(start.IsSuccessStatusCode);
        }

        // The next question streams slowly, and the client leaves after the first words.
        await api.ConfigureAsync("""{"chunk_chars": 4, "chunk_delay_ms": 200}""");
        using (var disconnect = CancellationTokenSource.CreateLinkedTokenSource(Cancel))
        {
            var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = StreamingReads.Json($$"""{"model":"claude-sonnet:latest","messages":[{{History}},{"role":"user","content":"an abandoned question that takes a while to answer"}]}""") }, HttpCompletionOption.ResponseHeadersRead, disconnect.Token);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync(disconnect.Token));
            Assert.NotNull(await reader.ReadLineAsync(disconnect.Token));
            await disconnect.CancelAsync();
            response.Dispose();
        }

        await api.ConfigureAsync("""{"chunk_chars": 8, "chunk_delay_ms": 0}""");
        using var edited = await http.PostAsync("/api/chat", StreamingReads.Json($$"""{"model":"claude-sonnet:latest","stream":false,"messages":[{{History}},{"role":"user","content":"the edited question"}]}"""), Cancel);

        Assert.True(edited.IsSuccessStatusCode, await edited.Content.ReadAsStringAsync(Cancel));
        Assert.Equal([("user", "one"), ("assistant", "one"), ("user", "two"), ("assistant", "two"), ("user", "the edited question")], SentMessages(api.MessageRequests()[^1]));
    }

    /// <summary>One step of a random conversation tree: from which known state, whether it asks anew or regenerates that
    /// state's answer, and whether it runs at the same time as the next step (another client).</summary>
    private sealed record Step(int From, bool Regenerate, bool AlongsideNext);

    private static readonly Gen<List<Step>> Steps = Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 3], Gen.Bool, (from, kind, alongside) => new Step(from, kind == 0, alongside)).List[4, 9];

    [Fact]
    public async Task In_random_conversation_trees_every_request_the_model_gets_is_exactly_its_own_branch()
    {
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "echo");
        await using var app = GatewayApp.WithRealCli(api);
        using var http = app.CreateClient();

        await Steps.SampleAsync(async steps =>
        {
            // Texts of this sample's own, so that no state of an earlier sample is ever a continuation of one here.
            var tag = Guid.NewGuid().ToString("N")[..8];
            List<List<(string Role, string Text)>> states = [[]];
            List<List<(string Role, string Text)>> expected = [];
            var logged = api.MessageRequests().Count;
            var next = 0;
            for (var i = 0; i < steps.Count;)
            {
                // A round: this step and the ones that run alongside it, all from states known before the round.
                var round = new List<(List<(string Role, string Text)> Sent, Task<HttpResponseMessage> Answer)>();
                do
                {
                    var step = steps[i++];
                    var from = states[step.From % states.Count];
                    var sent = step.Regenerate && from.Count > 0
                        ? from[..^1]
                        : [.. from, ("user", $"{tag} question {++next}")];
                    var body = JsonSerializer.Serialize(new { model = "claude-sonnet:latest", stream = false, messages = sent.Select(m => new { role = m.Role, content = m.Text }) });
                    round.Add((sent, http.PostAsync("/api/chat", StreamingReads.Json(body), Cancel)));
                }
                while (i < steps.Count && steps[i - 1].AlongsideNext);

                foreach (var (sent, answer) in round)
                {
                    using var response = await answer;
                    Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Cancel));
                    var text = (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("message").GetProperty("content").GetString()!;
                    expected.Add(sent);
                    states.Add([.. sent, ("assistant", text)]);
                }
            }

            // What the model got, request by request, is exactly the branches the clients sent: each as separate
            // messages in their roles, none with a message of another branch.
            var received = api.MessageRequests().Skip(logged).Select(SentMessages).Select(Describe).Order(StringComparer.Ordinal);
            Assert.Equal(expected.Select(Describe).Order(StringComparer.Ordinal), received);
        }, iter: 4, threads: 1, seed: null);
    }

    private static string Describe(List<(string Role, string Text)> messages) => string.Join(" | ", messages.Select(m => $"{m.Role}: {m.Text}"));

    /// <summary>The conversation as the model got it: each message's role and its text, without the CLI's own reminders.</summary>
    private static List<(string Role, string Text)> SentMessages(JsonElement body) =>
        [.. body.GetProperty("messages").EnumerateArray().Select(message => (
            message.GetProperty("role").GetString()!,
            message.GetProperty("content") is { ValueKind: JsonValueKind.String } text
                ? text.GetString()!
                : string.Concat(message.GetProperty("content").EnumerateArray()
                    .Where(block => block.GetProperty("type").GetString() == "text")
                    .Select(block => block.GetProperty("text").GetString()!)
                    .Where(part => !part.StartsWith("<system-reminder>", StringComparison.Ordinal)))))];
}
