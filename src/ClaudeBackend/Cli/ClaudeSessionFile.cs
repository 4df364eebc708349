using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// Writes a history that no Claude session holds as a session file of the CLI's own, so that <c>--resume</c> gives the
/// model the earlier turns as the real user and assistant messages they were. A transcript in one user message would
/// lose the roles, and would change from turn to turn, so Anthropic's prompt cache could never reuse it.
/// </summary>
/// <remarks>
/// The CLI keeps a session as <c>&lt;config&gt;/projects/&lt;working directory&gt;/&lt;id&gt;.jsonl</c>, one entry per
/// message, each naming its parent (recorded in <c>tests/Fixtures/resume_written_session</c>). Consecutive messages of
/// one role become one entry, as a live turn joins them.
/// </remarks>
internal static class ClaudeSessionFile
{
    /// <summary>Writes <paramref name="history"/> as <paramref name="session"/>; false if the CLI would not find it there.</summary>
    public static bool TryWrite(ClaudeCliEnvironment cli, ClaudeCliSession session, IReadOnlyList<ClaudeMessage> history, DateTimeOffset now)
    {
        var folderName = ClaudeCliEnvironment.ProjectFolderKeyOf(session.WorkingDirectory);
        if (folderName.Length >= ClaudeCliEnvironment.MaxProjectFolderName)
        {
            // The CLI names a long path's folder with a hash of its own making.
            return false;
        }

        var text = new StringBuilder();
        string? parent = null;
        var timestamp = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        // An empty message says nothing, and the API refuses an empty text block.
        foreach (var group in GroupByRole(history.Where(m => m.Text.Length > 0 || m.Images is { Count: > 0 })))
        {
            var uuid = Guid.NewGuid().ToString();
            var message = group[0].Role == ClaudeMessage.UserRole
                ? new SessionMessage(ClaudeMessage.UserRole, TurnPrompt.ContentOf(TurnPrompt.JoinedText(group), group))
                : new SessionMessage(ClaudeMessage.AssistantRole, [new CliInputBlock("text", TurnPrompt.JoinedText(group))],
                    Id: "msg_" + uuid.Replace("-", "", StringComparison.Ordinal), Type: "message", StopReason: "end_turn");
            var entry = new SessionEntry(parent, false, message.Role, message, uuid, timestamp, "external", session.WorkingDirectory, session.Id);
            text.Append(JsonSerializer.Serialize(entry, ClaudeBackendJsonContext.Default.SessionEntry)).Append('\n');
            parent = uuid;
        }

        try
        {
            Directory.CreateDirectory(session.WorkingDirectory);
            var folder = Directory.CreateDirectory(Path.Combine(cli.ConfigDirectory, "projects", folderName));
            File.WriteAllText(Path.Combine(folder.FullName, session.Id + ".jsonl"), text.ToString());
            return true;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // A config folder the gateway cannot write to: the history goes as a transcript instead.
            return false;
        }
    }

    private static IEnumerable<List<ClaudeMessage>> GroupByRole(IEnumerable<ClaudeMessage> messages)
    {
        List<ClaudeMessage> group = [];
        foreach (var message in messages)
        {
            if (group.Count > 0 && group[0].Role != message.Role)
            {
                yield return group;
                group = [];
            }

            group.Add(message);
        }

        if (group.Count > 0)
        {
            yield return group;
        }
    }
}

/// <summary>One message entry of a CLI session file.</summary>
internal sealed record SessionEntry(
    // The first entry names no parent, and says so.
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ParentUuid,
    bool IsSidechain,
    string Type,
    SessionMessage Message,
    string Uuid,
    string Timestamp,
    string UserType,
    string Cwd,
    Guid SessionId);

internal sealed record SessionMessage(
    string Role,
    IReadOnlyList<CliInputBlock> Content,
    string? Id = null,
    string? Type = null,
    [property: JsonPropertyName("stop_reason")] string? StopReason = null);
