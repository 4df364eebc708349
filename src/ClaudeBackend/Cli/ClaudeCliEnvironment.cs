using System.Globalization;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// What every <c>claude</c> process the gateway runs gets from its environment, and where the CLI therefore keeps its
/// state: its config folder (<c>CLAUDE_CONFIG_DIR</c>, else <c>$HOME/.claude</c>), with a project folder per working
/// directory that holds the sessions started there.
/// </summary>
public sealed class ClaudeCliEnvironment
{
    /// <summary>The longest project folder name the CLI uses as it is; longer ones it cuts and gives a hash suffix.</summary>
    internal const int MaxProjectFolderName = 200;

    public ClaudeCliEnvironment(IOptions<ClaudeBackendOptions> options)
    {
        var settings = options.Value;
        // Without these the CLI also calls Anthropic's bootstrap, telemetry and update endpoints on every start.
        var variables = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1",
            ["DISABLE_AUTOUPDATER"] = "1",
            ["DISABLE_TELEMETRY"] = "1",
            ["DISABLE_ERROR_REPORTING"] = "1",
            ["CLAUDE_CODE_MAX_RETRIES"] = settings.MaxRetries.ToString(CultureInfo.InvariantCulture),
            // A call of the client's functions waits for the client; the gateway, not the CLI, decides how long.
            ["MCP_TOOL_TIMEOUT"] = ((long)(settings.ToolResultTimeout + TimeSpan.FromMinutes(1)).TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (name, value) in settings.Environment)
        {
            variables[name] = value;
        }

        Variables = variables;
        ConfigDirectory = Path.GetFullPath(
            Variable(variables, "CLAUDE_CONFIG_DIR")
            ?? Path.Combine(Variable(variables, "HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".claude"));
    }

    /// <summary>The variables set for every CLI process, on top of the gateway's own environment.</summary>
    public IReadOnlyDictionary<string, string?> Variables { get; }

    /// <summary>The CLI's config folder: its login, and under <c>projects/</c> the sessions of each working directory.</summary>
    public string ConfigDirectory { get; }

    /// <summary>
    /// The folder where the CLI keeps what it stores for <paramref name="workingDirectory"/>: a <c>memory</c> folder
    /// even for a turn that stores no session, and each session's <c>&lt;id&gt;.jsonl</c>. Null if it has none.
    /// </summary>
    public string? ProjectFolderOf(string workingDirectory)
    {
        var projects = Path.Combine(ConfigDirectory, "projects");
        var name = ProjectFolderKeyOf(workingDirectory);
        if (name.Length < MaxProjectFolderName)
        {
            var folder = Path.Combine(projects, name);
            return Directory.Exists(folder) ? folder : null;
        }

        return Directory.Exists(projects) ? Directory.EnumerateDirectories(projects, name + "*").FirstOrDefault() : null;
    }

    /// <summary>
    /// The name of a working directory's project folder: its path with every character but [A-Za-z0-9] a '-'. The CLI
    /// cuts longer names and adds a hash; for those this is the cut part, which is all that can be matched.
    /// </summary>
    public static string ProjectFolderKeyOf(string workingDirectory)
    {
        var length = Math.Min(workingDirectory.Length, MaxProjectFolderName);
        return string.Create(length, workingDirectory, static (chars, path) =>
        {
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = char.IsAsciiLetterOrDigit(path[i]) ? path[i] : '-';
            }
        });
    }

    /// <summary>The part of a project folder's name that <see cref="ProjectFolderKeyOf"/> gives.</summary>
    public static string KeyOfProjectFolder(string folderName) =>
        folderName.Length > MaxProjectFolderName ? folderName[..MaxProjectFolderName] : folderName;

    /// <summary>
    /// Removes a working directory of the gateway's, what the CLI stored for it and, if given, for one session: the
    /// three go together, or the CLI's folders outlive the directory they were made for.
    /// </summary>
    public void DeleteWorkingDirectory(string workingDirectory, Guid? sessionId = null)
    {
        TemporaryPaths.TryDelete(workingDirectory);
        if (ProjectFolderOf(workingDirectory) is { } project)
        {
            TemporaryPaths.TryDelete(project);
        }

        if (sessionId is { } id)
        {
            TemporaryPaths.TryDelete(Path.Combine(ConfigDirectory, "session-env", id.ToString()));
        }
    }

    /// <summary>A variable as the CLI sees it: set by the gateway's configuration, else inherited; empty counts as unset.</summary>
    private static string? Variable(Dictionary<string, string?> variables, string name)
    {
        var value = variables.TryGetValue(name, out var configured) ? configured : Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(value) ? null : value;
    }
}
