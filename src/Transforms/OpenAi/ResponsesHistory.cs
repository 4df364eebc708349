using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms.OpenAi;

/// <summary>
/// The conversations of the responses this gateway gave, per owner, so that a request naming one in
/// <c>previous_response_id</c> goes on from it (unless the request said <c>store: false</c>). Kept in memory, the most
/// recent <see cref="Capacity"/>: the session behind a conversation is the lineage store's (found by this history), so a
/// restart loses only the ids.
/// </summary>
internal sealed class ResponsesHistory
{
    public const int Capacity = 1_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, IReadOnlyList<ClaudeMessage> Messages)>> _byKey = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, IReadOnlyList<ClaudeMessage> Messages)> _recent = new();

    public void Add(string? owner, string responseId, IReadOnlyList<ClaudeMessage> messages)
    {
        var key = KeyOf(owner, responseId);
        lock (_gate)
        {
            if (_byKey.Remove(key, out var earlier))
            {
                _recent.Remove(earlier);
            }

            _byKey[key] = _recent.AddFirst((key, messages));
            while (_recent.Count > Capacity)
            {
                _byKey.Remove(_recent.Last!.Value.Key);
                _recent.RemoveLast();
            }
        }
    }

    public IReadOnlyList<ClaudeMessage>? Find(string? owner, string responseId)
    {
        lock (_gate)
        {
            return _byKey.TryGetValue(KeyOf(owner, responseId), out var node) ? node.Value.Messages : null;
        }
    }

    private static string KeyOf(string? owner, string responseId) => $"{owner}\n{responseId}";
}
