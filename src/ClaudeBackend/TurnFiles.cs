using ClaudeProxy.ClaudeBackend.Cli;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The throw-away files of one turn, removed with it: the working directory of a turn that keeps no session, and the
/// project folder the CLI makes for it even then.
/// </summary>
internal sealed class TurnFiles(ClaudeCliEnvironment cli)
{
    private string? _workingDirectory;

    public string CreateWorkingDirectory() => _workingDirectory = TemporaryPaths.CreateFolder("turn");

    public void Delete()
    {
        if (_workingDirectory is not null)
        {
            cli.DeleteWorkingDirectory(_workingDirectory);
        }
    }
}
