namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Where turns get their CLI processes, so that a turn rarely waits for the CLI's cold start: a new chat takes one of the
/// <see cref="WarmSpares"/>, a kept conversation the process <see cref="KeptProcesses"/> holds for it (or a conversation
/// spare for its first turn), and anything else a process started for it (<see cref="CliWrapClaudeLauncher"/>).
/// </summary>
/// <remarks>
/// A process never serves two conversations: the CLI's <c>/clear</c> would need slash commands on and still leaves a
/// command transcript in the next conversation's prompt, so a process is ended instead of being cleared.
/// </remarks>
internal sealed class ClaudeProcessPool(CliWrapClaudeLauncher cold, WarmSpares spares, KeptProcesses kept, ClaudeCliMetrics metrics)
    : IClaudeCliLauncher, Contract.IClaudeLoadedProcesses
{
    /// <summary>The spares and the kept processes: what waits, loaded, for a turn.</summary>
    public IReadOnlyList<Contract.ClaudeLoadedProcess> Loaded() => [.. spares.Loaded(), .. kept.Loaded()];

    public async ValueTask<IClaudeCliRun> StartAsync(ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        if (invocation.SessionId is { } sessionId)
        {
            return await StartKeptAsync(sessionId, invocation, cancellationToken);
        }

        if (FitsASpare(invocation) && spares.TryClaimForChat(invocation) is { } warm)
        {
            return warm;
        }

        metrics.TurnStarted("cold");
        return await cold.StartAsync(invocation, cancellationToken);
    }

    private async Task<IClaudeCliRun> StartKeptAsync(Guid sessionId, ClaudeCliInvocation invocation, CancellationToken cancellationToken)
    {
        var fingerprint = invocation.Fingerprint;
        if (kept.Take(sessionId) is { } resident)
        {
            if (resident.Fingerprint == fingerprint)
            {
                metrics.TurnStarted("kept");
                return kept.BeginTurn(sessionId, resident, invocation);
            }

            // Another model, tool list or system prompt: a process started that way resumes the session.
            kept.Close(sessionId, resident, "changed");
        }

        // Its session file must be complete before another process resumes it.
        await kept.WaitUntilClosedAsync(sessionId, cancellationToken);

        ResidentClaudeProcess process;
        if (invocation.SessionMode == ClaudeSessionMode.Create && FitsASpare(invocation)
            && spares.TryClaimForConversation(invocation) is { } spare)
        {
            // The spare's own session and directory become the conversation's (the turn reports them to the store).
            process = spare;
            sessionId = process.Session.Id;
        }
        else
        {
            metrics.TurnStarted("cold");
            process = new ResidentClaudeProcess(cold, invocation, fingerprint);
        }

        kept.Track(sessionId, process);
        return kept.BeginTurn(sessionId, process, invocation);
    }

    public Task EndSessionAsync(Guid sessionId) => kept.EndAsync(sessionId);

    /// <summary>The first spares start with the gateway, in the background.</summary>
    public Task WarmUpAsync() => spares.RefillAsync();

    /// <summary>Ends kept processes the way they end by themselves (so their sessions are complete), then every other.</summary>
    public async Task StopAllAsync()
    {
        spares.Stop();
        await kept.StopAsync();
        await cold.StopAllAsync();
    }

    /// <summary>Spares run with no tools, so a turn with a tool allowlist or the client's functions needs a process started with them.</summary>
    private static bool FitsASpare(ClaudeCliInvocation invocation) => invocation.Tools is null or { Count: 0 } && !invocation.HasClientTools;
}
