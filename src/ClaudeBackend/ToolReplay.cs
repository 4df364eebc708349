using ClaudeProxy.ClaudeBackend.Cli;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.Conversations;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The results a client already sent for calls of its functions, when the process that made the calls is gone (a
/// timeout, an eviction, a restart). The conversation is rebuilt up to the question that led to them, and as the model
/// makes the same calls again (same function, same arguments) they get these results at once: the model sees real
/// <c>tool_use</c> and <c>tool_result</c> blocks, never a transcript. A call it did not make before goes to the client.
/// </summary>
/// <remarks>
/// The CLI cannot be resumed into the middle of a round: a session that ends in calls without results loses them on
/// <c>--resume</c>, and one that ends in results gets "Continue from where you left off." and a made-up answer
/// (recorded in <c>tests/Fixtures/client_tools</c>). So the round is asked again.
/// </remarks>
internal sealed class ToolReplay(IReadOnlyList<(ClaudeToolCall Call, ClaudeToolResult Result)> answers)
{
    private readonly List<(ClaudeToolCall Call, ClaudeToolResult Result)> _unused = [.. answers];

    /// <summary>
    /// The replay for a request that ends in function results: the question before the calls, as the turn to run, and
    /// every result after it, by call. Null when the request does not end in results.
    /// </summary>
    public static (IReadOnlyList<ClaudeMessage> Asked, ToolReplay Replay)? Of(IReadOnlyList<ClaudeMessage> messages)
    {
        if (messages.Count == 0 || messages[^1].ToolResults is not { Count: > 0 })
        {
            return null;
        }

        var question = messages.Count - 1;
        while (question >= 0 && (messages[question].Role != ClaudeMessage.UserRole || messages[question].ToolResults is { Count: > 0 }))
        {
            question--;
        }

        if (question < 0)
        {
            return null;
        }

        // Each result answers the latest call of its id before it: a client's own ids may repeat from round to round.
        Dictionary<string, ClaudeToolCall> calls = new(StringComparer.Ordinal);
        List<(ClaudeToolCall, ClaudeToolResult)> answers = [];
        foreach (var message in messages.Skip(question + 1))
        {
            foreach (var call in message.ToolCalls ?? [])
            {
                calls[call.Id] = call;
            }

            foreach (var result in ClaudeCliBackend.WithWordsBeside(message.ToolResults ?? [], message))
            {
                if (calls.TryGetValue(result.ToolCallId, out var answered))
                {
                    answers.Add((answered, result));
                }
            }
        }

        return ([.. messages.Take(question + 1)], new ToolReplay(answers));
    }

    /// <summary>Whether results are left for calls made again.</summary>
    public bool HasAnswers => _unused.Count > 0;

    /// <summary>Answers <paramref name="call"/> with the result of the same call made before; false if there is none.</summary>
    public bool TryAnswer(PendingToolCall call, ClientToolServer? server)
    {
        if (server is null)
        {
            return false;
        }

        var arguments = ConversationLineage.CanonicalJson(call.Call.Arguments);
        var index = _unused.FindIndex(a => a.Call.Name == call.Call.Name && ConversationLineage.CanonicalJson(a.Call.Arguments) == arguments);
        if (index < 0)
        {
            return false;
        }

        server.Answer(call, _unused[index].Result);
        _unused.RemoveAt(index);
        return true;
    }
}
