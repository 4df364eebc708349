using System.Security.Cryptography;
using System.Text;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The one digest of a text: for names that must not reveal it (Redis keys, working directories, API keys in logs), for
/// keys compared in constant time (API and worker keys: digests are of equal length, so the time taken says nothing of a
/// key's length or content), for a stable hash (a conversation's worker), or for what must stay the same while the text
/// does (a Claude model's listed digest).
/// </summary>
public static class TextDigest
{
    /// <summary>The SHA-256 of <paramref name="text"/>'s UTF-8.</summary>
    public static byte[] Sha256(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));

    /// <summary>The SHA-256 of <paramref name="text"/>'s UTF-8, in lowercase hex.</summary>
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(Sha256(text));
}
