using ClaudeProxy.ClaudeBackend.Cli;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class ClaudeCliInvocationTests
{
    private static ClaudeCliInvocation Invocation(ClaudeSessionMode mode = ClaudeSessionMode.Ephemeral, Guid? session = null) =>
        new("sonnet", """{"type":"user","message":{"role":"user","content":[{"type":"text","text":"secret prompt"}]}}""", "/tmp/work", mode, session, "SYSTEM-SECRET");

    [Fact]
    public void The_cli_gets_no_tools_no_mcp_no_settings_and_no_slash_commands()
    {
        var arguments = Invocation().ToArguments("/tmp/system.txt");

        Assert.Equal("", arguments[arguments.ToList().IndexOf("--tools") + 1]);
        Assert.Equal("", arguments[arguments.ToList().IndexOf("--setting-sources") + 1]);
        Assert.Contains("--strict-mcp-config", arguments);
        Assert.Contains("--disable-slash-commands", arguments);
        Assert.DoesNotContain(arguments, a => a.Contains("dangerously", StringComparison.Ordinal));
        Assert.DoesNotContain(arguments, a => a.Contains("--allowedTools", StringComparison.Ordinal));
    }

    [Fact]
    public void The_prompt_and_system_prompt_never_appear_in_argv()
    {
        var arguments = Invocation().ToArguments("/tmp/system.txt");

        Assert.DoesNotContain(arguments, a => a.Contains("secret prompt", StringComparison.Ordinal) || a.Contains("SECRET", StringComparison.Ordinal));
        Assert.Equal("/tmp/system.txt", arguments[arguments.ToList().IndexOf("--system-prompt-file") + 1]);
        Assert.Equal(["--input-format", "stream-json"], arguments.SkipWhile(a => a != "--input-format").Take(2));
    }

    [Fact]
    public void Sessions_are_created_resumed_or_not_stored()
    {
        var id = Guid.NewGuid();

        Assert.Contains("--no-session-persistence", Invocation().ToArguments("/tmp/system.txt"));
        Assert.Equal(["--session-id", id.ToString()], Invocation(ClaudeSessionMode.Create, id).ToArguments(null).TakeLast(2));
        Assert.Equal(["--resume", id.ToString()], Invocation(ClaudeSessionMode.Resume, id).ToArguments(null).TakeLast(2));
    }
}
