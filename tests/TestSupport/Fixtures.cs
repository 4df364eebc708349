namespace ClaudeProxy.TestSupport;

/// <summary>
/// The real CLI's recorded output: the contract the codecs are tested against. Cases come from shared/claude-cli/fixtures,
/// or from this repository's tests/Fixtures for behaviour recorded since (tests/Fixtures/record.sh).
/// </summary>
public static class Fixtures
{
    public static string PathOf(string name, string file)
    {
        var own = Path.Combine(RepoPaths.Root, "tests", "Fixtures", name, file);
        return File.Exists(own) ? own : Path.Combine(RepoPaths.Fixtures, name, file);
    }

    public static string StdoutPath(string name) => PathOf(name, "stdout.txt");

    public static string[] StdoutLines(string name) => Lines(name, "stdout.txt");

    /// <summary>The lines of a case's <paramref name="file"/>, blank ones left out.</summary>
    public static string[] Lines(string name, string file) =>
        File.ReadAllLines(PathOf(name, file)).Where(line => line.Length > 0).ToArray();
}
