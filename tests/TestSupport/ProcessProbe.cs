namespace ClaudeProxy.TestSupport;

/// <summary>
/// Finds the processes a test started, by a marker variable in their environment (children inherit it), so a test can
/// prove that no <c>claude</c> process or child outlives its request.
/// </summary>
public static class ProcessProbe
{
    public const string MarkerVariable = "CLAUDEPROXY_TEST_MARKER";

    public static IReadOnlyList<int> FindMarked(string marker)
    {
        // Anchored at an entry's start: the gateway's own ClaudeBackend__Environment__CLAUDEPROXY_TEST_MARKER=… must not match.
        var needle = $"\0{MarkerVariable}={marker}\0";
        List<int> found = [];
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                var environment = File.ReadAllText(Path.Combine(directory, "environ"));
                var status = File.ReadAllText(Path.Combine(directory, "status"));
                // A zombie has exited; only its parent's wait is missing.
                if (("\0" + environment + "\0").Contains(needle, StringComparison.Ordinal) && !status.Contains("State:\tZ", StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }

    /// <summary>Waits up to <paramref name="timeout"/> for every marked process to be gone; returns those still there.</summary>
    public static async Task<IReadOnlyList<int>> WaitUntilGoneAsync(string marker, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = FindMarked(marker);
            if (left.Count == 0 || DateTime.UtcNow > deadline)
            {
                return left;
            }

            await Task.Delay(50);
        }
    }
}
