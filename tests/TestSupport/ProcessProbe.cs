namespace ClaudeProxy.TestSupport;

/// <summary>
/// Finds the processes a test started, by a marker variable in their environment (children inherit it), so a test can
/// prove that no <c>claude</c> process or child outlives its request.
/// </summary>
public static class ProcessProbe
{
    public const string MarkerVariable = "CLAUDEPROXY_TEST_MARKER";

    public static IReadOnlyList<int> FindMarked(string marker) => [.. FindMarkedWithParents(marker).Keys];

    /// <summary>
    /// The marked processes whose parent is not marked: those the gateway started itself. The CLI starts short-lived
    /// children of its own (seen at start-up), which a count of its processes must not see.
    /// </summary>
    public static IReadOnlyList<int> FindStartedByGateway(string marker)
    {
        var marked = FindMarkedWithParents(marker);
        return [.. marked.Where(process => !marked.ContainsKey(process.Value)).Select(process => process.Key)];
    }

    private static Dictionary<int, int> FindMarkedWithParents(string marker)
    {
        // Anchored at an entry's start: the gateway's own ClaudeBackend__Environment__CLAUDEPROXY_TEST_MARKER=… must not match.
        var needle = $"\0{MarkerVariable}={marker}\0";
        Dictionary<int, int> found = [];
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
                    found[pid] = ParentOf(status);
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

    /// <summary>A process's command line, its arguments separated by NULs; empty once it is gone.</summary>
    public static string CommandLineOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static int ParentOf(string status)
    {
        var line = status.Split('\n').FirstOrDefault(l => l.StartsWith("PPid:", StringComparison.Ordinal));
        return line is not null && int.TryParse(line.AsSpan("PPid:".Length).Trim(), out var parent) ? parent : 0;
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
