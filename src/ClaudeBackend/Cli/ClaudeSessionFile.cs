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
        foreach (var group in GroupByRole(history.Where(m => m.Text.Length > 0 || m.Images is { Count: > 0 } || m.ToolCalls is { Count: > 0 } || m.ToolResults is { Count: > 0 })))
        {
            var uuid = Guid.NewGuid().ToString();
            var said = TurnPrompt.JoinedText(group.Where(m => m.Text.Length > 0));
            var message = group[0].Role == ClaudeMessage.UserRole
                ? new SessionMessage(ClaudeMessage.UserRole, [.. ToolResultBlocks(group), .. ContentOf(said, group)])
                : new SessionMessage(ClaudeMessage.AssistantRole, [.. said.Length > 0 ? [new CliInputBlock("text", said)] : Array.Empty<CliInputBlock>(), .. ToolUseBlocks(group)],
                    Id: "msg_" + uuid.Replace("-", "", StringComparison.Ordinal), Type: "message",
                    StopReason: group[^1].ToolCalls is { Count: > 0 } ? ClaudeTurnResult.ToolUseStopReason : "end_turn");
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

    /// <summary>A user message's text and images; none when it only carries function results.</summary>
    private static IEnumerable<CliInputBlock> ContentOf(string text, List<ClaudeMessage> group) =>
        text.Length == 0 && group.All(m => m.Images is null or { Count: 0 }) ? [] : TurnPrompt.ContentOf(text, group);

    /// <summary>The model's calls of the client's functions, under the names it was offered them by.</summary>
    private static IEnumerable<CliInputBlock> ToolUseBlocks(List<ClaudeMessage> group) =>
        group.SelectMany(m => m.ToolCalls ?? []).Select(call => new CliInputBlock(
            "tool_use", Id: ToolUseIdOf(call.Id), Name: ClientToolServer.ToolNamePrefix + call.Name, Input: ArgumentsOf(call.Arguments)));

    private static IEnumerable<CliInputBlock> ToolResultBlocks(List<ClaudeMessage> group) =>
        group.SelectMany(m => m.ToolResults ?? []).Select(result => new CliInputBlock(
            "tool_result", ToolUseId: ToolUseIdOf(result.ToolCallId), Content: result.Content, IsError: result.IsError ? true : null));

    /// <summary>The API takes ids of letters, digits, '_' and '-' only; a client may have made its own otherwise.</summary>
    private static string ToolUseIdOf(string id) =>
        string.Concat(id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_')) is { Length: > 0 } valid ? valid : "call";

    private static JsonElement ArgumentsOf(string arguments)
    {
        try
        {
            using var document = JsonDocument.Parse(arguments);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : EmptyObject();
        }
        catch (JsonException)
        {
            return EmptyObject();
        }
    }

    private static JsonElement EmptyObject()
    {
        using var document = JsonDocument.Parse("{}");
        return document.RootElement.Clone();
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
