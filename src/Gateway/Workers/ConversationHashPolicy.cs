using System.Buffers.Binary;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace ClaudeProxy.Gateway.Workers;

/// <summary>The key that keeps a conversation's turns on one worker, found in the request body.</summary>
/// <param name="Key">What names the conversation from turn to turn.</param>
/// <param name="IsNew">
/// Its history is nothing but its opening (no answer, no call, no earlier response): a new chat, which may go to any
/// worker. A conversation with an id cannot tell: only the placements know.
/// </param>
internal sealed record ConversationAffinity(string Key, bool IsNew = false)
{
    private const string IdPrefix = "id\n";

    /// <summary>Whether the conversation is named by the client's id (else by its history).</summary>
    public bool IsById => Key.StartsWith(IdPrefix, StringComparison.Ordinal);

    /// <summary>The address of the worker the conversation is on (<see cref="IConversationPlacements"/>); null if none is known.</summary>
    public string? Worker { get; init; }

    /// <summary>The Responses API's <c>previous_response_id</c>: the request goes on from that response's conversation.</summary>
    public string? PreviousResponseId { get; init; }

    /// <summary>What a key by history is made of before its first user message: caller, model and system prompt.</summary>
    private string? HistoryScope { get; init; }

    /// <summary>
    /// The key of the conversation a request goes on from (its <see cref="PreviousResponseId"/>), whose first user message
    /// was <paramref name="opening"/>: the key its first turn had, so that it finds that turn's worker.
    /// </summary>
    public ConversationAffinity GoingOnFrom(string opening) =>
        HistoryScope is null ? this : this with { Key = HistoryScope + opening, IsNew = false };

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
                return new ConversationAffinity($"{IdPrefix}{owner}\n{id}");
            }

            var first = FirstUserText(root);
            var scope = $"history\n{owner}\n{StringOf(root, "model")}\n{SystemText(root)}\n";
            return first is null
                ? null
                : new ConversationAffinity(scope + first, IsOpening(root)) { PreviousResponseId = StringOf(root, "previous_response_id"), HistoryScope = scope };
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

    /// <summary>
    /// Whether the history has only what opens a conversation: system (developer) and user messages, and no
    /// <c>previous_response_id</c>; an answer, a call or a tool's result means a conversation that ran somewhere.
    /// </summary>
    private static bool IsOpening(JsonElement root) =>
        StringOf(root, "previous_response_id") is null
        && (root.TryGetProperty("messages", out var items) || root.TryGetProperty("input", out items))
        && (items.ValueKind != JsonValueKind.Array
            || items.EnumerateArray().All(item => item.ValueKind == JsonValueKind.Object && StringOf(item, "role") is "system" or "developer" or "user"));

    /// <summary>
    /// A content's text: a string, or the <c>text</c> of its blocks (<c>text</c>, <c>input_text</c>) in order, a line
    /// apart, as the dialects join them (the first user message of a kept response's conversation is compared with it).
    /// </summary>
    private static string TextOf(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString()!,
        JsonValueKind.Array => string.Join('\n', content.EnumerateArray()
            .Where(block => block.ValueKind == JsonValueKind.Object && StringOf(block, "text") is not null)
            .Select(block => StringOf(block, "text"))),
        _ => "",
    };
}

/// <summary>
/// Sends a conversation to the worker it is on (<see cref="ConversationAffinity.Worker"/>) while that one is healthy,
/// a new chat and a request of no conversation to the least busy worker (<see cref="WorkerLoads"/>: every front's
/// turns as the worker last reported them, with this front's own since), and any other conversation (its worker gone,
/// or not known to this front) to the healthy worker its key hashes to: rendezvous hashing, the same on every front and
/// after a restart, and a worker that leaves moves only its own conversations.
/// </summary>
internal sealed class ConversationHashPolicy(WorkerLoads loads) : ILoadBalancingPolicy
{
    public const string PolicyName = "ConversationHash";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var affinity = context.Features.Get<ConversationAffinity>();
        if (affinity?.Worker is { } placed && availableDestinations.FirstOrDefault(destination => destination.Model.Config.Address == placed) is { } holder)
        {
            return holder;
        }

        if (affinity is null || affinity is { IsNew: true, Worker: null })
        {
            // Of the least busy, the one the key hashes to (any one for no conversation): new chats one after another spread.
            var least = availableDestinations.Min(loads.Of);
            List<DestinationState> leastBusy = [.. availableDestinations.Where(destination => loads.Of(destination) == least)];
            return affinity is null ? leastBusy[Random.Shared.Next(leastBusy.Count)] : ByHash(affinity.Key, leastBusy);
        }

        return ByHash(affinity.Key, availableDestinations);
    }

    // The same on every gateway in front of the same workers: a stable hash, not string.GetHashCode.
    private static DestinationState ByHash(string key, IReadOnlyList<DestinationState> destinations) =>
        destinations.MaxBy(destination => Score(key, destination.Model.Config.Address))!;

    private static ulong Score(string key, string destination) =>
        BinaryPrimitives.ReadUInt64BigEndian(TextDigest.Sha256(key + "\n" + destination));
}
