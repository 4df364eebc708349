namespace ClaudeProxy.TestSupport;

/// <summary>The real CLI's recorded output in shared/claude-cli/fixtures: the contract the codecs are tested against.</summary>
public static class Fixtures
{
    public static string StdoutPath(string name) => Path.Combine(RepoPaths.Fixtures, name, "stdout.txt");

    public static string[] StdoutLines(string name) =>
        File.ReadAllLines(StdoutPath(name)).Where(line => line.Length > 0).ToArray();
}
