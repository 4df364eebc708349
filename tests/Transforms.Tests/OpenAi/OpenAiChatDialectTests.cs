using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.Tests.OpenAi;

public sealed class OpenAiChatDialectTests
{
    private static readonly ClaudeDialect Dialect = ClaudeDialects.OpenAiChat;

    /// <summary>The SSE frames' data, checking the framing on the way.</summary>
    private static List<string> Frames(string sse)
    {
        Assert.EndsWith("\n\n", sse, StringComparison.Ordinal);
        var frames = sse[..^2].Split("\n\n");
        Assert.All(frames, frame => Assert.StartsWith("data: ", frame, StringComparison.Ordinal));
        return frames.Select(frame => frame["data: ".Length..]).ToList();
    }

    [Fact]
    public void Content_parts_images_and_developer_messages_are_understood()
    {
        var request = DialectHarness.Parse(Dialect, """
            {"model":"claude-sonnet:latest","user":"alice","max_completion_tokens":50,"n":1,"messages":[
              {"role":"developer","content":"Be brief."},
              {"role":"user","content":[{"type":"text","text":"what is"},{"type":"text","text":"this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="}}]}]}
            """);

        Assert.False(request.Stream);
        Assert.Equal("Be brief.", request.Turn.SystemPrompt);
        Assert.Equal("what is\nthis?", request.Turn.Messages[0].Text);
        Assert.Equal("image/png", Assert.Single(request.Turn.Messages[0].Images!).MediaType);
        Assert.Equal("alice", request.Turn.ConversationId);
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[]}""", "too short")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "model")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}""", "data URL")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}]}""", "does not support tools")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":42}]}""", "content must be")]
    public void A_bad_request_is_refused_with_a_clear_message(string json, string expected)
    {
        var exception = Assert.Throws<DialectRequestException>(() => Dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out _));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_has_role_first_then_a_finish_chunk_a_usage_chunk_and_done()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"claude-sonnet:latest","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}""");

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, "print_stream_json_partial"));

        Assert.Equal("[DONE]", frames[^1]);
        var chunks = frames[..^1].Select(f => JsonDocument.Parse(f).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        var content = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _))
            .Select(d => d.GetProperty("content").GetString());
        Assert.Equal("Hello, streaming world!", string.Concat(content));
        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal("stop", finish.GetProperty("finish_reason").GetString());
        Assert.Empty(finish.GetProperty("delta").EnumerateObject());
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(3173, chunks[^1].GetProperty("usage").GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(13, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt64());
        Assert.Equal(3186, chunks[^1].GetProperty("usage").GetProperty("total_tokens").GetInt64());
        Assert.All(chunks[..^2], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
    }

    [Fact]
    public async Task Without_include_usage_there_is_no_usage_chunk()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}""");

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, "print_stream_json_partial"));

        Assert.DoesNotContain(frames, f => f.Contains("\"usage\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failure_mid_stream_is_an_error_frame_the_sdks_raise()
    {
        var request = DialectHarness.Parse(Dialect, """{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}""");
        var backend = TestSupport.Fixtures.StdoutLines("print_stream_json_partial").Take(5);

        var frames = Frames(await DialectHarness.StreamAsync(Dialect, request, backend, new ClaudeBackendError(ClaudeErrorKind.RateLimited, "slow down")));

        var error = JsonDocument.Parse(frames[^1]).RootElement.GetProperty("error");
        Assert.Equal("slow down", error.GetProperty("message").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal("rate_limited", error.GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", frames);
    }
}
