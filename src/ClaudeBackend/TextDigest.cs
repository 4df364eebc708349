using System.Security.Cryptography;
using System.Text;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The one digest of a text: for names that must not reveal it (Redis keys, working directories, API keys in logs) or
/// that must stay the same while it does (a Claude model's listed digest).
/// </summary>
public static class TextDigest
{
    /// <summary>The SHA-256 of <paramref name="text"/>'s UTF-8, in lowercase hex.</summary>
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
