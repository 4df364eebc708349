using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>The configured Claude models and every name that reaches them.</summary>
public sealed class ClaudeModelCatalog
{
    private const string DefaultTag = ":latest";
    private readonly Dictionary<string, ClaudeModelOptions> _byName = new(StringComparer.OrdinalIgnoreCase);

    public ClaudeModelCatalog(IOptions<ClaudeBackendOptions> options)
    {
        Models = options.Value.Models;
        foreach (var model in Models)
        {
            _byName.TryAdd(model.Name, model);
            foreach (var alias in model.Aliases)
            {
                _byName.TryAdd(alias, model);
            }
        }
    }

    public IReadOnlyList<ClaudeModelOptions> Models { get; }

    /// <summary>Finds a model by name or alias; <c>claude-sonnet</c> finds <c>claude-sonnet:latest</c> as Ollama would.</summary>
    public bool TryFind(string? name, [NotNullWhen(true)] out ClaudeModelOptions? model)
    {
        model = null;
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        return _byName.TryGetValue(name, out model)
            || !name.Contains(':', StringComparison.Ordinal) && _byName.TryGetValue(name + DefaultTag, out model);
    }
}
