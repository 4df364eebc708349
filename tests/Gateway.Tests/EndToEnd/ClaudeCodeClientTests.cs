using System.Text.Json;
using ClaudeProxy.Gateway.Tests.Infrastructure;
using ClaudeProxy.TestSupport;
using CliWrap;
using CliWrap.Buffered;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;

namespace ClaudeProxy.Gateway.Tests.EndToEnd;

/// <summary>
/// Claude Code itself as a client (<c>ANTHROPIC_BASE_URL</c> pointed at the gateway): one door to Claude, through the
/// CLI behind the gateway, and to a local model, through the Ollama behind it (a WireMock that speaks Ollama's
/// <c>/v1/messages</c>).
/// </summary>
public sealed class ClaudeCodeClientTests
{
    /// <summary>What Ollama (0.14 and later) streams for <c>/v1/messages</c>, in the Anthropic API's shape.</summary>
    private static readonly string OllamaMessagesStream = string.Concat(
        Frame("message_start", """{"type":"message_start","message":{"id":"msg_ollama","type":"message","role":"assistant","model":"llama3.2:latest","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":0}}}"""),
        Frame("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"""),
        Frame("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from "}}"""),
        Frame("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"the local model"}}"""),
        Frame("content_block_stop", """{"type":"content_block_stop","index":0}"""),
        Frame("message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"""),
        Frame("message_stop", """{"type":"message_stop"}"""));

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Claude_code_pointed_at_the_gateway_answers_with_claude_and_with_an_ollama_model()
    {
        RealCli.EnsureInstalled();
        await using var api = await FakeAnthropicServer.StartAsync("--reply", "fixed:Hello from behind the gateway");
        using var ollama = FakeOllama.Start();
        ollama.Server.Given(Request.Create().WithPath("/v1/messages").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "text/event-stream").WithBody(OllamaMessagesStream));
        await using var app = GatewayApp.WithRealCli(api, kestrel: true, configure: GatewayApp.WithOllama(ollama.Url));
        using var http = app.CreateClient();

        var claude = await AskAsync(http.BaseAddress!, "claude-sonnet:latest");
        var local = await AskAsync(http.BaseAddress!, "llama3.2:latest");

        Assert.Equal("Hello from behind the gateway", claude.GetProperty("result").GetString());
        Assert.Equal("Hello from the local model", local.GetProperty("result").GetString());
        // The local model's request went to Ollama as Claude Code sent it.
        var forwarded = JsonDocument.Parse(ollama.LastRequestTo("/v1/messages").Body!).RootElement;
        Assert.Equal("llama3.2:latest", forwarded.GetProperty("model").GetString());
        Assert.True(forwarded.GetProperty("stream").GetBoolean());
    }

    /// <summary>The real CLI, as a user runs it with the gateway as its API, asked once: its JSON result.</summary>
    private static async Task<JsonElement> AskAsync(Uri gateway, string model)
    {
        var home = Directory.CreateTempSubdirectory("claude-code-client-");
        try
        {
            var result = await Cli.Wrap(RepoPaths.RealClaudeCli)
                .WithArguments(["-p", "say hello", "--model", model, "--tools", "", "--strict-mcp-config", "--setting-sources", "", "--output-format", "json"])
                .WithWorkingDirectory(home.FullName)
                .WithEnvironmentVariables(new Dictionary<string, string?>
                {
                    ["ANTHROPIC_BASE_URL"] = gateway.ToString().TrimEnd('/'),
                    ["ANTHROPIC_API_KEY"] = "sk-ant-unused",
                    ["HOME"] = home.FullName,
                    ["CLAUDE_CONFIG_DIR"] = Path.Combine(home.FullName, ".claude"),
                    ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
                    ["DISABLE_AUTOUPDATER"] = "1",
                    ["DISABLE_TELEMETRY"] = "1",
                    ["DISABLE_ERROR_REPORTING"] = "1",
                    ["CLAUDE_CODE_MAX_RETRIES"] = "0",
                })
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(Cancel);

            Assert.True(result.ExitCode == 0, $"claude exited with {result.ExitCode}: {result.StandardOutput} {result.StandardError}");
            return JsonDocument.Parse(result.StandardOutput).RootElement.Clone();
        }
        finally
        {
            home.Delete(recursive: true);
        }
    }

    private static string Frame(string name, string data) => $"event: {name}\ndata: {data}\n\n";
}
