using ClaudeProxy.ClaudeBackend.Cli;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// Keeps what kept conversations leave on disk bounded: a conversation unused for
/// <see cref="ClaudeBackendOptions.ConversationIdleLimit"/>, or beyond <see cref="ClaudeBackendOptions.MaxConversations"/>
/// (the ones unused the longest first), loses its mapping, its working directory and the CLI's session files, all
/// together. Applied at start and every <see cref="ClaudeBackendOptions.RetentionInterval"/>. At start it also clears
/// what no mapping names any more: working directories and the CLI's project folders left by crashes or interrupted
/// first turns.
/// </summary>
internal sealed partial class ConversationRetention(
    ConversationStore store,
    IClaudeCliLauncher launcher,
    ClaudeCliEnvironment cli,
    IOptions<ClaudeBackendOptions> options,
    TimeProvider timeProvider,
    ILogger<ConversationRetention> logger)
{
    /// <summary>A folder no mapping names yet may belong to a turn that has just begun; only older ones are leftovers.</summary>
    private static readonly TimeSpan LeftoverAge = TimeSpan.FromMinutes(10);

    /// <summary>Removes the conversations over the limits; returns how many were removed.</summary>
    /// <remarks>A conversation with a turn running or waiting is skipped; the next sweep finds it again if it is still over.</remarks>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var conversations = await store.ListAsync(cancellationToken);
        var idleSince = timeProvider.GetUtcNow() - settings.ConversationIdleLimit;
        var byAge = conversations.OrderBy(c => c.LastUsed).ToList();
        var overCap = Math.Max(0, conversations.Count - settings.MaxConversations);
        var due = byAge.Where((conversation, index) => index < overCap || conversation.LastUsed < idleSince).ToList();
        if (due.Count == 0)
        {
            return 0;
        }

        List<(StoredConversation Conversation, IDisposable TurnLease)> removing = [];
        try
        {
            foreach (var conversation in due)
            {
                if (store.TryEnterTurn(conversation.Key) is { } lease)
                {
                    removing.Add((conversation, lease));
                }
            }

            // A turn may have ended between the listing and its lock (used just now, perhaps in a new session): only a
            // conversation still as it was listed goes.
            var unchanged = (await store.ListAsync(cancellationToken)).ToHashSet();
            foreach (var moved in removing.Where(r => !unchanged.Contains(r.Conversation)).ToList())
            {
                moved.TurnLease.Dispose();
                removing.Remove(moved);
            }

            foreach (var (conversation, _) in removing)
            {
                // A process kept for its next turn writes its session out as it ends: end it before the files go.
                await launcher.EndSessionAsync(conversation.Session.Id);
            }

            if (removing.Count > 0)
            {
                await store.ForgetAsync([.. removing.Select(r => r.Conversation.Key)], cancellationToken);
            }

            foreach (var (conversation, _) in removing)
            {
                cli.DeleteWorkingDirectory(conversation.Session.WorkingDirectory, conversation.Session.Id);
            }
        }
        finally
        {
            foreach (var (_, lease) in removing)
            {
                lease.Dispose();
            }
        }

        LogRemoved(logger, removing.Count, due.Count - removing.Count, conversations.Count - removing.Count);
        return removing.Count;
    }

    /// <summary>
    /// Removes working directories that no mapping names, and the CLI's project folders of working directories that are
    /// gone (conversations removed while the CLI ran elsewhere, throw-away turn folders of a gateway that was killed).
    /// Run at start, before any warm process takes a folder of its own.
    /// </summary>
    public async Task<int> RemoveLeftoversAsync(CancellationToken cancellationToken)
    {
        var named = (await store.ListAsync(cancellationToken)).Select(c => c.Session.WorkingDirectory).ToHashSet(StringComparer.Ordinal);
        var oldEnough = timeProvider.GetUtcNow() - LeftoverAge;
        var removed = 0;
        if (Directory.Exists(store.WorkRoot))
        {
            foreach (var folder in Directory.EnumerateDirectories(store.WorkRoot))
            {
                if (!named.Contains(folder) && Directory.GetLastWriteTimeUtc(folder) < oldEnough.UtcDateTime)
                {
                    cli.DeleteWorkingDirectory(folder);
                    removed++;
                }
            }
        }

        // The CLI names a project folder after its working directory with every other character a '-', so the folders of
        // the gateway's own working directories share a prefix; each is kept only while its working directory exists.
        var projects = Path.Combine(cli.ConfigDirectory, "projects");
        if (Directory.Exists(projects))
        {
            var live = Directory.Exists(store.WorkRoot)
                ? Directory.EnumerateDirectories(store.WorkRoot).Select(ClaudeCliEnvironment.ProjectFolderKeyOf).ToHashSet(StringComparer.Ordinal)
                : [];
            string[] ours =
            [
                ClaudeCliEnvironment.ProjectFolderKeyOf(store.WorkRoot + Path.DirectorySeparatorChar),
                ClaudeCliEnvironment.ProjectFolderKeyOf(Path.Combine(Path.GetTempPath(), TemporaryPaths.Prefix)),
            ];
            foreach (var folder in Directory.EnumerateDirectories(projects))
            {
                var name = ClaudeCliEnvironment.KeyOfProjectFolder(Path.GetFileName(folder));
                if (ours.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)) && !live.Contains(name)
                    && Directory.GetLastWriteTimeUtc(folder) < oldEnough.UtcDateTime)
                {
                    TemporaryPaths.TryDelete(folder);
                    removed++;
                }
            }
        }

        if (removed > 0)
        {
            LogLeftovers(logger, removed);
        }

        return removed;
    }

    /// <summary>Applies the limits every <see cref="ClaudeBackendOptions.RetentionInterval"/> until the gateway stops.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(options.Value.RetentionInterval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    await SweepAsync(stopping);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // Whatever failed, the next interval tries again: a loop that ended here would leave the disk unbounded.
                    LogSweepFailed(logger, exception);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Removed} kept conversations over the retention limits ({Busy} busy, left for later); {Left} remain")]
    private static partial void LogRemoved(ILogger logger, int removed, int busy, int left);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Count} working or session folders that no conversation uses any more")]
    private static partial void LogLeftovers(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Applying the conversation retention limits failed; trying again at the next interval")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}
