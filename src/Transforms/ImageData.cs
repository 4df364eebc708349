using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms;

/// <summary>Images as clients send them: bare base64 (Ollama) or <c>data:</c> URLs (OpenAI).</summary>
internal static class ImageData
{
    public static ClaudeImage FromBase64(string base64)
    {
        Span<byte> head = stackalloc byte[12];
        var sniffed = Convert.TryFromBase64String(base64.Length > 16 ? base64[..16] : base64, head, out var written)
            ? MediaTypeOf(head[..written])
            : null;
        return new ClaudeImage(sniffed ?? throw new DialectRequestException("images must be base64-encoded PNG, JPEG, GIF or WebP data"), base64);
    }

    public static ClaudeImage FromDataUrl(string url)
    {
        const string prefix = "data:";
        var comma = url.IndexOf(',', StringComparison.Ordinal);
        if (!url.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || comma < 0
            || !url.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            throw new DialectRequestException("image_url must be a base64 data URL (data:image/png;base64,...); other URLs are not fetched");
        }

        return FromBase64(url[(comma + 1)..]);
    }

    private static string? MediaTypeOf(ReadOnlySpan<byte> head) => head switch
    {
        [0x89, (byte)'P', (byte)'N', (byte)'G', ..] => "image/png",
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [(byte)'G', (byte)'I', (byte)'F', (byte)'8', ..] => "image/gif",
        [(byte)'R', (byte)'I', (byte)'F', (byte)'F', _, _, _, _, (byte)'W', (byte)'E', (byte)'B', (byte)'P', ..] => "image/webp",
        _ => null,
    };
}
