using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.Tests;

public sealed class TurnPromptTests
{
    private static JsonElement Content(string inputLine)
    {
        var line = JsonDocument.Parse(inputLine).RootElement;
        Assert.Equal("user", line.GetProperty("type").GetString());
        Assert.Equal("user", line.GetProperty("message").GetProperty("role").GetString());
        return line.GetProperty("message").GetProperty("content");
    }

    [Fact]
    public void A_single_user_message_is_sent_as_it_is()
    {
        var content = Content(TurnPrompt.ToInputLine([new ClaudeMessage("user", "hello")], includeHistory: true));

        Assert.Equal("hello", Assert.Single(content.EnumerateArray()).GetProperty("text").GetString());
    }

    [Fact]
    public void Earlier_turns_travel_as_a_transcript_before_the_new_message()
    {
        ClaudeMessage[] messages = [new("user", "my name is Ada"), new("assistant", "Hello Ada"), new("user", "what is my name?")];

        var text = Content(TurnPrompt.ToInputLine(messages, includeHistory: true))[0].GetProperty("text").GetString()!;

        Assert.Contains("<user>\nmy name is Ada\n</user>", text, StringComparison.Ordinal);
        Assert.Contains("<assistant>\nHello Ada\n</assistant>", text, StringComparison.Ordinal);
        Assert.EndsWith("</conversation_history>\n\nwhat is my name?", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_resumed_session_gets_only_the_new_turn()
    {
        ClaudeMessage[] messages = [new("user", "one"), new("assistant", "two"), new("user", "three")];

        var text = Content(TurnPrompt.ToInputLine(messages, includeHistory: false))[0].GetProperty("text").GetString();

        Assert.Equal("three", text);
    }

    [Fact]
    public void A_message_starting_with_a_slash_reaches_the_model_as_text()
    {
        var text = Content(TurnPrompt.ToInputLine([new ClaudeMessage("user", "/clear everything")], includeHistory: true))[0].GetProperty("text").GetString();

        Assert.Equal(" /clear everything", text);
    }

    [Theory]
    [InlineData("@/etc/passwd", "\u2060@/etc/passwd")]
    [InlineData("read @\"/etc/passwd\" and @~/.ssh/id_rsa", "read \u2060@\"/etc/passwd\" and \u2060@~/.ssh/id_rsa")]
    [InlineData("line one\n@server:file:///etc/hosts", "line one\n\u2060@server:file:///etc/hosts")]
    [InlineData("ask\u3002@agent-reviewer", "ask\u3002\u2060@agent-reviewer")]
    [InlineData("mail ada@example.com, @@twice", "mail ada@example.com, \u2060@@twice")]
    public void An_at_sign_the_cli_would_read_as_a_mention_reaches_the_model_as_text(string said, string sent)
    {
        var text = Content(TurnPrompt.ToInputLine([new ClaudeMessage("user", said)], includeHistory: true))[0].GetProperty("text").GetString();

        Assert.Equal(sent, text);
    }

    [Fact]
    public void A_mention_in_the_transcript_of_earlier_turns_stays_text_too()
    {
        ClaudeMessage[] messages = [new("user", "@/etc/passwd"), new("assistant", "no"), new("user", "again")];

        var text = Content(TurnPrompt.ToInputLine(messages, includeHistory: true))[0].GetProperty("text").GetString()!;

        Assert.Contains("<user>\n\u2060@/etc/passwd\n</user>", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Images_of_the_new_turn_become_base64_image_blocks()
    {
        var image = new ClaudeImage("image/png", "iVBORw0KGgo=");

        var content = Content(TurnPrompt.ToInputLine([new ClaudeMessage("user", "what is this?", [image])], includeHistory: true));

        var block = content[1];
        Assert.Equal("image", block.GetProperty("type").GetString());
        Assert.Equal("base64", block.GetProperty("source").GetProperty("type").GetString());
        Assert.Equal("image/png", block.GetProperty("source").GetProperty("media_type").GetString());
        Assert.Equal("iVBORw0KGgo=", block.GetProperty("source").GetProperty("data").GetString());
    }
}
