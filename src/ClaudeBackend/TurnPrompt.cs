using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>Builds the stream-json user line that carries a turn to the CLI on stdin.</summary>
internal static partial class TurnPrompt
{
    /// <summary>
    /// The new turn is every message after the last assistant message. With <paramref name="includeHistory"/>, the
    /// earlier messages go in front of it as a transcript: only for a history that could not be written as a session
    /// of its own (<see cref="Cli.ClaudeSessionFile"/>), since the CLI takes one user message per turn.
    /// </summary>
    public static string ToInputLine(IReadOnlyList<ClaudeMessage> messages, bool includeHistory)
    {
        var history = HistoryCount(messages);
        var text = new StringBuilder();
        if (includeHistory && history > 0)
        {
            text.Append("<conversation_history>\n");
            foreach (var message in messages.Take(history))
            {
                var images = message.Images is { Count: > 0 } attached ? $"\n[{attached.Count} image(s) not repeated]" : "";
                var calls = string.Concat((message.ToolCalls ?? []).Select(c => $"\n[called {c.Name}({c.Arguments})]"));
                var results = string.Concat((message.ToolResults ?? []).Select(r => $"\n[result of a call: {r.Content}]"));
                text.Append('<').Append(message.Role).Append(">\n")
                    .Append(message.Text).Append(images).Append(calls).Append(results)
                    .Append("\n</").Append(message.Role).Append(">\n");
            }

            text.Append("</conversation_history>\n\n");
        }

        var newTurn = messages.Skip(history).ToList();
        text.Append(JoinedText(newTurn));
        var blocks = ContentOf(EscapeSlashCommand(EscapeMentions(text.ToString())), newTurn);
        return JsonSerializer.Serialize(new CliUserLine(new CliUserMessage(blocks)), ClaudeBackendJsonContext.Default.CliUserLine);
    }

    /// <summary>The text of several messages sent as one: the CLI and the API take one message per turn.</summary>
    public static string JoinedText(IEnumerable<ClaudeMessage> messages) => string.Join("\n\n", messages.Select(m => m.Text));

    /// <summary>A user message's content blocks: its text, then its images; no empty text beside images.</summary>
    public static List<CliInputBlock> ContentOf(string text, IEnumerable<ClaudeMessage> messages)
    {
        var images = messages.SelectMany(m => m.Images ?? []).Select(image => new CliInputBlock("image", Source: new CliImageSource(image.MediaType, image.Base64Data))).ToList();
        return text.Length > 0 || images.Count == 0 ? [new CliInputBlock("text", text), .. images] : images;
    }

    /// <summary>How many messages come before the new turn: every one up to the last assistant message.</summary>
    public static int HistoryCount(IReadOnlyList<ClaudeMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role == ClaudeMessage.AssistantRole)
            {
                return i + 1;
            }
        }

        return 0;
    }

    /// <summary>
    /// The CLI reads a prompt that starts with <c>/</c> as a slash command and never sends it to the model (with
    /// <c>--disable-slash-commands</c> it answers "isn't available"). A leading space makes it plain text.
    /// </summary>
    private static string EscapeSlashCommand(string text) =>
        text.StartsWith('/') ? " " + text : text;

    /// <summary>
    /// The CLI reads an <c>@</c> at the start of the prompt or after whitespace (or 。、？！) as a mention, whatever its
    /// tools: <c>@path</c> and <c>@"path"</c> attach that file or directory of the gateway's host to the prompt,
    /// <c>@server:uri</c> an MCP resource, <c>@agent-name</c> an agent (CLI 2.1.197). A client's text must never read the
    /// host's files: a word joiner (U+2060: invisible, and not whitespace) in front of each such <c>@</c> keeps it text.
    /// </summary>
    private static string EscapeMentions(string text) => MentionStart().Replace(text, "$1\u2060@");

    /// <remarks>The CLI's own boundary, in JavaScript's <c>\s</c>, which also counts U+FEFF.</remarks>
    [GeneratedRegex(@"(^|[\s\uFEFF\u3002\u3001\uFF1F\uFF01])@")]
    private static partial Regex MentionStart();
}
