using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>A state file of the gateway's (in its data directory): written whole or not at all, read back or set aside.</summary>
public static class JsonFile
{
    /// <summary>
    /// What <paramref name="file"/> holds; default when there is none. A file that is not what it should be is damage from
    /// outside (writes are atomic): it is kept beside, as <c>.corrupt-</c> and the time, for a human, and the state starts
    /// afresh rather than failing every request.
    /// </summary>
    public static T? Read<T>(string file, JsonTypeInfo<T> type, TimeProvider timeProvider)
    {
        if (!File.Exists(file))
        {
            return default;
        }

        try
        {
            using var stream = File.OpenRead(file);
            return JsonSerializer.Deserialize(stream, type);
        }
        catch (JsonException)
        {
            File.Move(file, $"{file}.corrupt-{timeProvider.GetUtcNow():yyyyMMddHHmmss}", overwrite: true);
            return default;
        }
    }

    /// <summary>Writes a new file and renames it over the old one: a crash mid-write leaves the old state whole.</summary>
    public static async Task WriteAsync<T>(string file, T value, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var temporary = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
        await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
        {
            await JsonSerializer.SerializeAsync(stream, value, type, cancellationToken);
        }

        File.Move(temporary, file, overwrite: true);
    }
}
