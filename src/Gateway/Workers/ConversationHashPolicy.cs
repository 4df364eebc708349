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

            string Text(string name) => root.TryGetProperty(name, out var value) ? value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText() : "";
            var id = Text("id") is { Length: > 0 } explicitId ? explicitId : Text("user");
            if (id.Length > 0)
            {
                return new ConversationAffinity($"id\n{owner}\n{id}");
            }

            var first = root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array && messages.GetArrayLength() > 0 ? messages[0].GetRawText()
                : root.TryGetProperty("input", out var input) ? input.ValueKind == JsonValueKind.Array && input.GetArrayLength() > 0 ? input[0].GetRawText() : Text("input")
                : null;
            return first is null ? null : new ConversationAffinity($"history\n{owner}\n{Text("model")}\n{Text("system")}{Text("instructions")}\n{first}");
        }
        catch (JsonException)
        {
            return null;
        }
    }
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
