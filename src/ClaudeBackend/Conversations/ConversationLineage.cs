using System.Security.Cryptography;
using System.Text;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.ClaudeBackend.Conversations;

/// <summary>
/// Recognises a conversation that has no id by what was said in it. A Claude session is stored under the digest of
/// the messages it has seen (within one scope: owner, model, system prompt, tools); a request whose history is exactly
/// those messages continues that session, any other history (an edit, a regenerated answer, another client's chat that
/// started with the same words and went elsewhere) never finds it.
/// </summary>
public static class ConversationLineage
{
    /// <summary>The store key of the session that has seen exactly <paramref name="messages"/> in <paramref name="scope"/>.</summary>
    public static string KeyOf(string? owner, string scope, IEnumerable<ClaudeMessage> messages)
    {
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(digest, scope);
        foreach (var message in messages)
        {
            Append(digest, message.Role);
            // Clients trim what they send back of an answer; the words are what must match.
            Append(digest, message.Text.Trim());
            foreach (var image in message.Images ?? [])
            {
                Append(digest, image.MediaType);
                Append(digest, image.Base64Data);
            }

            // Calls and results by what they say, not by their ids, which some clients do not send back.
            foreach (var call in message.ToolCalls ?? [])
            {
                Append(digest, "call");
                Append(digest, call.Name);
                Append(digest, CanonicalJson(call.Arguments));
            }

            foreach (var result in message.ToolResults ?? [])
            {
                Append(digest, result.IsError ? "error" : "result");
                Append(digest, result.Content.Trim());
            }
        }

        // "lineage:" is a start that no client id's key (ConversationStore.KeyOf) has.
        return "lineage:" + ConversationStore.KeyOf(owner, Convert.ToHexStringLower(digest.GetHashAndReset()));
    }

    /// <summary>
    /// What must be the same for two requests to be one conversation: what the CLI process was started with (model,
    /// tools, system prompt; <see cref="Cli.ClaudeCliInvocation.FingerprintOf"/>), and the client's own chat id if it
    /// sends one.
    /// </summary>
    public static string ScopeOf(string cliModel, string? systemPrompt, IReadOnlyList<string>? tools, string? clientChatId = null, IReadOnlyList<ClaudeTool>? clientTools = null) =>
        $"{Cli.ClaudeCliInvocation.FingerprintOf(cliModel, tools, systemPrompt, clientTools)}\n{clientChatId}";

    /// <summary>
    /// Arguments as compact JSON with every object's properties in order of name: an OpenAI client sends back the text
    /// it got, an Ollama client the object re-encoded its own way (a Go client sorts the keys).
    /// </summary>
    internal static string CanonicalJson(string json)
    {
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(json) is { } node ? Sorted(node)!.ToJsonString() : "null";
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
            // Not JSON, or an object with a key twice (which a JsonObject refuses): compared as sent.
            return json.Trim();
        }
    }

    private static System.Text.Json.Nodes.JsonNode? Sorted(System.Text.Json.Nodes.JsonNode? node) => node switch
    {
        System.Text.Json.Nodes.JsonObject value => new System.Text.Json.Nodes.JsonObject(
            value.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        System.Text.Json.Nodes.JsonArray items => new System.Text.Json.Nodes.JsonArray([.. items.Select(Sorted)]),
        _ => node?.DeepClone(),
    };

    private static void Append(IncrementalHash digest, string value)
    {
        // Length-prefixed, so no two message lists give the same bytes.
        Span<byte> length = stackalloc byte[4];
        var bytes = Encoding.UTF8.GetBytes(value);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        digest.AppendData(length);
        digest.AppendData(bytes);
    }
}
