using ClaudeProxy.ClaudeBackend.Cli;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The throw-away files of one turn, removed with it: the working directory of a turn that keeps no session (and the
/// project folder the CLI makes for it even then), and the system prompt file.
/// </summary>
internal sealed class TurnFiles(ClaudeCliEnvironment cli)
{
    private string? _workingDirectory;
    private string? _systemPromptFile;

    public string CreateWorkingDirectory() => _workingDirectory = TemporaryPaths.CreateFolder("turn");

    /// <summary>Writes the system prompt to a file of its own: prompts stay out of argv, so out of the process list.</summary>
    public async Task<string> WriteSystemPromptAsync(string systemPrompt, CancellationToken cancellationToken)
    {
        _systemPromptFile = Path.Combine(Path.GetTempPath(), $"{TemporaryPaths.Prefix}system-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(_systemPromptFile, systemPrompt, cancellationToken);
        return _systemPromptFile;
    }

    public void Delete()
    {
        if (_workingDirectory is not null)
        {
            cli.DeleteStateOf(_workingDirectory);
            TemporaryPaths.TryDelete(_workingDirectory);
        }

        if (_systemPromptFile is not null)
        {
            TemporaryPaths.TryDelete(_systemPromptFile);
        }
    }
}
