namespace ClaudeProxy.TestSupport;

/// <summary>Where the tests find the repository, the shared material beside it and the CLIs they run.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The team's shared folder: <c>../shared</c> beside the clone (CI puts it there), or <c>CLAUDEPROXY_SHARED</c>.</summary>
    public static string Shared { get; } = Environment.GetEnvironmentVariable("CLAUDEPROXY_SHARED") is { Length: > 0 } shared
        ? shared
        : Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    public static string Fixtures => Path.Combine(Shared, "claude-cli", "fixtures");

    public static string FakeAnthropicScript => Path.Combine(Shared, "claude-cli", "fake_anthropic.py");

    /// <summary>Runs <see cref="FakeAnthropicScript"/> with headers of a test's choosing on its answers.</summary>
    public static string FakeAnthropicWithHeadersScript => Path.Combine(Root, "tests", "TestSupport", "fake_anthropic_with_headers.py");

    /// <summary>The real CLI the test build installs with npm (pinned to the version the fixtures were recorded with).</summary>
    public static string RealClaudeCli { get; } = Environment.GetEnvironmentVariable("CLAUDEPROXY_TEST_CLI") is { Length: > 0 } cli
        ? cli
        : Path.Combine(Root, ".tools", "claude-cli", "node_modules", ".bin", "claude");

    /// <summary>The fake CLI built from tests/FakeClaude, copied next to the test assembly.</summary>
    public static string FakeClaudeCli => Path.Combine(AppContext.BaseDirectory, "fake-claude");

    /// <summary>True on the CI machine, where every end-to-end test must run rather than skip.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ClaudeProxy.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("ClaudeProxy.sln not found above " + AppContext.BaseDirectory);
    }
}
