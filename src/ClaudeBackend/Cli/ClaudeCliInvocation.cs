namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>How a turn uses Claude's session storage.</summary>
public enum ClaudeSessionMode
{
    /// <summary>A one-off turn: nothing is stored (<c>--no-session-persistence</c>).</summary>
    Ephemeral,

    /// <summary>The first turn of a kept conversation (<c>--session-id</c>).</summary>
    Create,

    /// <summary>A later turn of a kept conversation (<c>--resume</c>).</summary>
    Resume,
}

/// <summary>Everything one CLI run needs. The prompt travels on stdin, never in argv.</summary>
/// <param name="CliModel">The <c>--model</c> value.</param>
/// <param name="InputLine">The stream-json user line written to stdin.</param>
/// <param name="WorkingDirectory">An empty folder of the turn's own (the CLI keeps sessions per working directory).</param>
/// <param name="SessionMode">Whether the turn creates, resumes or skips a stored session.</param>
/// <param name="SessionId">The session to create or resume.</param>
/// <param name="SystemPrompt">The system prompt, or null for the CLI's own. It reaches a process started with it through a
/// file (<c>--system-prompt-file</c>), a waiting spare through its <c>initialize</c> request.</param>
/// <param name="Tools">The CLI tools the turn may use; none by default.</param>
/// <param name="ClientTools">The client's functions, served to the process in its pipe (<see cref="ClientToolServer"/>).</param>
/// <param name="Settings">The effort, thinking and output limit of the turn, sent ahead of its prompt.</param>
/// <param name="OutputSchema">The schema of a structured answer. Like the system prompt it is the process's for life, and
/// reaches it in its <c>initialize</c> request (never in argv).</param>
/// <param name="KeepAlive">How long a kept process waits idle after this turn (Ollama's <c>keep_alive</c>); zero ends it
/// after the turn, null is the configured idle timeout.</param>
public sealed record ClaudeCliInvocation(
    string CliModel,
    string InputLine,
    string WorkingDirectory,
    ClaudeSessionMode SessionMode,
    Guid? SessionId,
    string? SystemPrompt,
    IReadOnlyList<string>? Tools = null,
    IReadOnlyList<Contract.ClaudeTool>? ClientTools = null,
    ClaudeCliSettings Settings = default,
    System.Text.Json.JsonElement? OutputSchema = null,
    TimeSpan? KeepAlive = null)
{
    /// <summary>What a process started for this invocation can serve again: the model, the tools, the system prompt and the output schema.</summary>
    public string Fingerprint => FingerprintOf(CliModel, Tools, SystemPrompt, ClientTools, OutputSchema);

    public static string FingerprintOf(
        string cliModel,
        IReadOnlyList<string>? tools,
        string? systemPrompt,
        IReadOnlyList<Contract.ClaudeTool>? clientTools = null,
        System.Text.Json.JsonElement? outputSchema = null)
    {
        // A process lists the client's functions once, when it starts: other functions need another process.
        var functions = string.Join('\n', (clientTools ?? []).Select(f => $"{f.Name}\t{f.Description}\t{f.Parameters.GetRawText()}"));
        return $"{cliModel}\n{string.Join(',', tools ?? [])}\n{systemPrompt}\n{functions}\n{outputSchema?.GetRawText()}";
    }

    /// <summary>
    /// What the turn writes to stdin on a process that has <paramref name="applied"/>: the settings that differ, then the
    /// prompt. The CLI applies the control requests before it reads the prompt that follows them.
    /// </summary>
    public IEnumerable<string> TurnInput(ClaudeCliSettings applied) => [.. Settings.ControlLines(applied), InputLine];

    /// <summary>The <c>initialize</c> request a process started for this invocation needs before its first turn, if any.</summary>
    public string? Initialization => OutputSchema is { } schema ? StreamJson.CliControlRequest.Initialize(null, schema) : null;

    /// <summary>Whether the process must serve the client's functions, which needs its stdin open for their results.</summary>
    public bool HasClientTools => ClientTools is { Count: > 0 };

    /// <summary>
    /// The lean, safe profile: no tools (by default the CLI runs read-only Bash and Read unasked), no MCP servers,
    /// no settings files, no slash commands; stream-json in and out with partial messages so tokens stream.
    /// </summary>
    /// <param name="systemPromptFile">Where the launcher wrote <see cref="SystemPrompt"/>; null when there is none.</param>
    public IReadOnlyList<string> ToArguments(string? systemPromptFile)
    {
        List<string> arguments =
        [
            "-p",
            "--input-format", "stream-json",
            "--output-format", "stream-json",
            "--verbose",
            "--include-partial-messages",
            // Exactly the allowed tools, usually none: the CLI's default set runs shell commands unasked.
            "--tools", string.Join(',', Tools ?? []),
            "--strict-mcp-config",
            "--setting-sources", "",
            "--disable-slash-commands",
            "--model", CliModel,
        ];
        if (HasClientTools)
        {
            // The client's functions, and only they, served in the pipe and callable without a permission prompt.
            arguments.AddRange(["--mcp-config", ClientToolServer.McpConfig, "--allowedTools", ClientToolServer.AllowedTools(ClientTools!)]);
        }

        if (systemPromptFile is not null)
        {
            arguments.AddRange(["--system-prompt-file", systemPromptFile]);
        }

        switch (SessionMode)
        {
            case ClaudeSessionMode.Create:
                arguments.AddRange(["--session-id", SessionId!.Value.ToString()]);
                break;
            case ClaudeSessionMode.Resume:
                arguments.AddRange(["--resume", SessionId!.Value.ToString()]);
                break;
            default:
                arguments.Add("--no-session-persistence");
                break;
        }

        return arguments;
    }
}
