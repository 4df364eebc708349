using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

internal static class RealCli
{
    /// <summary>
    /// The end-to-end tests need the real CLI (the test build installs it with npm) and python3 for the fake API.
    /// Without them a developer's run skips these tests; on CI it fails, because there they must run.
    /// </summary>
    public static void EnsureInstalled()
    {
        var missing = new List<string>();
        if (!File.Exists(RepoPaths.RealClaudeCli))
        {
            missing.Add($"the claude CLI at {RepoPaths.RealClaudeCli} (dotnet build installs it with npm)");
        }

        if (!File.Exists(RepoPaths.FakeAnthropicScript))
        {
            missing.Add($"{RepoPaths.FakeAnthropicScript} (the shared folder beside the repository)");
        }

        if (missing.Count == 0)
        {
            return;
        }

        var message = "End-to-end test needs " + string.Join(" and ", missing);
        if (RepoPaths.IsCi)
        {
            throw new InvalidOperationException(message);
        }

        Assert.Skip(message);
    }
}
