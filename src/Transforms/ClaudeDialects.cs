using System.Diagnostics.CodeAnalysis;
using ClaudeProxy.Transforms.Anthropic;
using ClaudeProxy.Transforms.Ollama;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Transforms;

/// <summary>The dialects a route can name in its <c>ClaudeDialect</c> metadata.</summary>
public static class ClaudeDialects
{
    public static ClaudeDialect OllamaChat { get; } = new OllamaChatDialect();

    public static ClaudeDialect OllamaGenerate { get; } = new OllamaGenerateDialect();

    public static ClaudeDialect OpenAiChat { get; } = new OpenAiChatDialect();

    public static ClaudeDialect OpenAiResponses { get; } = new OpenAiResponsesDialect();

    public static ClaudeDialect AnthropicMessages { get; } = new AnthropicMessagesDialect();

    public static IReadOnlyList<ClaudeDialect> All { get; } = [OllamaChat, OllamaGenerate, OpenAiChat, OpenAiResponses, AnthropicMessages];

    public static bool TryGet(string? name, [NotNullWhen(true)] out ClaudeDialect? dialect)
    {
        // An indexed loop, not a lambda or an enumerator: every Claude turn and every error of a dialect's route asks
        // (for its error style), and neither should leave garbage behind.
        for (var i = 0; i < All.Count; i++)
        {
            if (All[i].Name == name)
            {
                dialect = All[i];
                return true;
            }
        }

        dialect = null;
        return false;
    }
}
