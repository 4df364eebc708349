namespace ClaudeProxy.ClaudeBackend;

internal static class TemporaryPaths
{
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
