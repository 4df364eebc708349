namespace ClaudeProxy.ClaudeBackend;

internal static class TemporaryPaths
{
    /// <summary>What the names of the gateway's own temporary files and folders start with.</summary>
    public const string Prefix = "claudeproxy-";

    /// <summary>A new empty folder under the system's temporary folder, named <c>claudeproxy-&lt;purpose&gt;-…</c>.</summary>
    public static string CreateFolder(string purpose) => Directory.CreateTempSubdirectory($"{Prefix}{purpose}-").FullName;

    /// <summary>Deletes a temporary file or folder if it can: a leftover is harmless, the turn's answer matters more.</summary>
    public static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
