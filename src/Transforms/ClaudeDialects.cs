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
        // A loop, not a lambda: every request of a dialect's route asks (for its error style), and a closure per call
        // is garbage on the Ollama pass-through's path.
        foreach (var candidate in All)
        {
            if (candidate.Name == name)
            {
                dialect = candidate;
                return true;
            }
        }

        dialect = null;
        return false;
    }
}
