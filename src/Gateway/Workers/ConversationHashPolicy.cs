using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>The key that keeps a conversation's turns on one worker, found in the request body.</summary>
internal sealed record ConversationAffinity(string Key)
{
    /// <summary>
    /// A conversation's own key: its id (the original server's <c>id</c>, else <c>user</c>) and owner; else what a
    /// conversation without an id keeps from turn to turn, its first message (or <c>input</c>) with the system prompt
    /// and the model, so that every later turn, and the results of a paused call, come back to the worker that holds its
    /// session and process. Null for a one-off request (<c>/api/generate</c>'s <c>prompt</c>), which goes anywhere.
    /// </summary>
    public static ConversationAffinity? Of(byte[] body, string? owner)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            // As the dialects read them: a blank or non-string id is no id.
            var id = StringOf(root, "id") ?? StringOf(root, "user");
            if (id is not null)
            {
                return new ConversationAffinity($"id\n{owner}\n{id}");
            }

            var first = FirstUserText(root);
            return first is null
                ? null
                : new ConversationAffinity($"history\n{owner}\n{StringOf(root, "model")}\n{SystemText(root)}\n{first}");
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? StringOf(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(value.GetString()) ? value.GetString() : null;

    /// <summary>Anthropic's <c>system</c> or the Responses API's <c>instructions</c>, as text.</summary>
    private static string SystemText(JsonElement root) =>
        (root.TryGetProperty("system", out var system) ? TextOf(system) : "") + (StringOf(root, "instructions") ?? "");

    /// <summary>
    /// The first user message's text: the first turn of every dialect's history (a system message before it is the
    /// same for many chats), read the same whether its content is a string or blocks (the CLI as a client moves its
    /// <c>cache_control</c> marks every turn), and for the Responses API's <c>input</c> as a string or as items.
    /// </summary>
    private static string? FirstUserText(JsonElement root)
    {
        if (root.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.String)
        {
            return input.GetString();
        }

        var items = root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array ? messages
            : input.ValueKind == JsonValueKind.Array ? input
            : default;
        if (items.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Object && StringOf(item, "role") == "user" && item.TryGetProperty("content", out var content))
            {
                return TextOf(content);
            }
        }

        return null;
    }

    /// <summary>A content's text: a string, or the <c>text</c> of its blocks (<c>text</c>, <c>input_text</c>) in order.</summary>
    private static string TextOf(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString()!,
        JsonValueKind.Array => string.Concat(content.EnumerateArray()
            .Where(block => block.ValueKind == JsonValueKind.Object)
            .Select(block => StringOf(block, "text") ?? "")),
        _ => "",
    };
}

/// <summary>
/// Sends a conversation to the same healthy worker every time (rendezvous hashing of its key, so a worker that leaves
/// moves only its own conversations and one that comes back gets them again), and a request with no conversation to
/// the least busy worker.
/// </summary>
internal sealed class ConversationHashPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "ConversationHash";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        if (context.Features.Get<ConversationAffinity>() is not { } affinity)
        {
            return availableDestinations.MinBy(destination => destination.ConcurrentRequestCount);
        }

        // The same on every gateway in front of the same workers: a stable hash, not string.GetHashCode.
        return availableDestinations.MaxBy(destination => Score(affinity.Key, destination.Model.Config.Address));
    }

    private static ulong Score(string key, string destination) =>
        BinaryPrimitives.ReadUInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(key + "\n" + destination)));
}
