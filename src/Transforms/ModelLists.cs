using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.Transforms.Anthropic;
using ClaudeProxy.Transforms.Ollama;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Transforms;

/// <summary>The Claude models in the shapes of Ollama's and OpenAI's model endpoints.</summary>
public static class ModelLists
{
    private const string Family = "claude";
    private static readonly OllamaModelDetails Details = new("", "claude-code-cli", Family, [Family], "", "");

    /// <summary>What the gateway can really do with a Claude model: chat, images in, thinking out. Tools are off.</summary>
    private static readonly string[] Capabilities = ["completion", "vision", "thinking", "tools"];

    /// <summary>Stands for "never unloads" in <c>/api/ps</c>, as Ollama's own far-future <c>expires_at</c> does.</summary>
    private static readonly DateTimeOffset NeverExpires = new(2318, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Ollama's version when it answered one (both clients accept what it says), else the configured one.</summary>
    public static byte[] OllamaVersion(byte[]? upstream, string fallback)
    {
        if (upstream is not null && TryParse(upstream) is { } document)
        {
            using (document)
            {
                if (document.RootElement.ValueKind == JsonValueKind.Object
                    && document.RootElement.TryGetProperty("version", out var version)
                    && version.ValueKind == JsonValueKind.String)
                {
                    return upstream;
                }
            }
        }

        return JsonOutput.ToBytes(new OllamaVersion(fallback), DialectJsonContext.Default.OllamaVersion);
    }

    /// <summary><c>/api/tags</c>: the Claude models, then Ollama's own entries untouched (less any a Claude name shadows).</summary>
    public static byte[] OllamaTags(byte[]? upstream, IReadOnlyList<ClaudeModelOptions> models, DateTimeOffset modifiedAt) =>
        Merge(upstream, "models", "name", openAiList: false, models, m => TagEntry(m, modifiedAt), DialectJsonContext.Default.OllamaModelEntry);

    /// <summary>
    /// <c>/api/ps</c>: a Claude model is loaded while CLI processes for it wait for turns (warm spares, conversations'
    /// kept processes): their resident memory is its <c>size</c> (nothing is in VRAM), and it expires when the last of
    /// them would be ended (a spare never is). Next to what Ollama has in memory.
    /// </summary>
    public static byte[] OllamaRunning(
        byte[]? upstream, IReadOnlyList<ClaudeModelOptions> models, IReadOnlyList<ClaudeLoadedProcess> loaded, DateTimeOffset modifiedAt)
    {
        var running = models.Where(m => loaded.Any(p => p.CliModel == m.CliModel)).ToList();
        return Merge(upstream, "models", "name", openAiList: false, running,
            m =>
            {
                var processes = loaded.Where(p => p.CliModel == m.CliModel).ToList();
                return TagEntry(m, modifiedAt) with
                {
                    Size = processes.Sum(p => p.ResidentBytes ?? 0),
                    ExpiresAt = processes.Any(p => p.ExpiresAt is null) ? NeverExpires : processes.Max(p => p.ExpiresAt),
                    SizeVram = 0,
                    ContextLength = m.ContextLength,
                };
            },
            DialectJsonContext.Default.OllamaModelEntry);
    }

    /// <summary>The answer to pulling a Claude model: there is nothing to download, so it succeeded.</summary>
    public static byte[] OllamaPullSuccess(bool stream) =>
        stream ? "{\"status\":\"success\"}\n"u8.ToArray() : "{\"status\":\"success\"}"u8.ToArray();

    /// <summary>Whether an Ollama management request asked for a stream (its default).</summary>
    public static bool WantsStream(byte[] body)
    {
        using var document = TryParse(body);
        return document is null
            || document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("stream", out var stream)
            || stream.ValueKind != JsonValueKind.False;
    }

    public static byte[] OllamaShow(ClaudeModelOptions model, DateTimeOffset modifiedAt)
    {
        var info = new Dictionary<string, JsonElement>
        {
            ["general.architecture"] = JsonSerializer.SerializeToElement(Family, DialectJsonContext.Default.String),
            ["general.basename"] = JsonSerializer.SerializeToElement(model.Name, DialectJsonContext.Default.String),
            [$"{Family}.context_length"] = JsonSerializer.SerializeToElement((long)model.ContextLength, DialectJsonContext.Default.Int64),
        };
        var show = new OllamaShowResponse(
            Modelfile: $"# {model.Name}: Claude through the Claude Code CLI (--model {model.CliModel})",
            Parameters: "",
            Template: "",
            Details,
            info,
            Capabilities,
            modifiedAt);
        return JsonOutput.ToBytes(show, DialectJsonContext.Default.OllamaShowResponse);
    }

    /// <summary>The model named by an <c>/api/show</c> body (<c>model</c>, or the older <c>name</c>).</summary>
    public static string? ReadShowModel(byte[] body)
    {
        try
        {
            var request = body.Length == 0 ? null : JsonSerializer.Deserialize(body, DialectJsonContext.Default.OllamaShowRequest);
            return request?.Model ?? request?.Name;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary><c>/v1/models</c>: the Claude models, then Ollama's entries untouched.</summary>
    public static byte[] OpenAiModels(byte[]? upstream, IReadOnlyList<ClaudeModelOptions> models, DateTimeOffset created) =>
        Merge(upstream, "data", "id", openAiList: true, models, m => OpenAiModelOf(m.Name, created), DialectJsonContext.Default.OpenAiModel);

    /// <summary>
    /// <c>/v1/models</c> for an Anthropic client (it sends <c>anthropic-version</c>): the Claude models, then Ollama's
    /// from its OpenAI list, in Anthropic's shape.
    /// </summary>
    public static byte[] AnthropicModels(byte[]? upstreamOpenAiList, IReadOnlyList<ClaudeModelOptions> models, DateTimeOffset created)
    {
        List<AnthropicModel> data = [.. models.Select(m => new AnthropicModel(m.Name, m.Name, created))];
        using var document = upstreamOpenAiList is null ? null : TryParse(upstreamOpenAiList);
        if (document?.RootElement is { ValueKind: JsonValueKind.Object } root && root.TryGetProperty("data", out var entries) && entries.ValueKind == JsonValueKind.Array)
        {
            var claudeNames = models.Select(m => m.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var entry in entries.EnumerateArray())
            {
                if (entry.ValueKind == JsonValueKind.Object
                    && entry.TryGetProperty("id", out var id) && TextOf(id) is { } name
                    && !claudeNames.Contains(name))
                {
                    data.Add(new AnthropicModel(name, name, CreatedOf(entry) ?? created));
                }
            }
        }

        return JsonOutput.ToBytes(new AnthropicModelList(data, HasMore: false, data.FirstOrDefault()?.Id, data.LastOrDefault()?.Id), DialectJsonContext.Default.AnthropicModelList);
    }

    /// <summary>The header every Anthropic SDK request carries: what tells an Anthropic client from an OpenAI one on <c>/v1/models</c>.</summary>
    public const string AnthropicVersionHeader = "anthropic-version";

    public static byte[] AnthropicModel(string id, DateTimeOffset created) =>
        JsonOutput.ToBytes(new AnthropicModel(id, id, created), DialectJsonContext.Default.AnthropicModel);

    public static byte[] OpenAiModel(string id, DateTimeOffset created) =>
        JsonOutput.ToBytes(OpenAiModelOf(id, created), DialectJsonContext.Default.OpenAiModel);

    private static OpenAiModel OpenAiModelOf(string id, DateTimeOffset created) => new(id, created.ToUnixTimeSeconds(), "anthropic");

    /// <summary>
    /// Writes <c>{"models":[…]}</c> or <c>{"object":"list","data":[…]}</c>: the Claude entries, then each upstream entry as
    /// Ollama sent it, except one whose name a Claude model takes (requests for that name go to Claude).
    /// </summary>
    private static byte[] Merge<T>(
        byte[]? upstream,
        string listProperty,
        string keyProperty,
        bool openAiList,
        IReadOnlyList<ClaudeModelOptions> models,
        Func<ClaudeModelOptions, T> entryOf,
        JsonTypeInfo<T> typeInfo)
    {
        // Sized for the whole answer up front (a Claude entry is about 400 bytes): growing from the default 256 bytes
        // copied and dropped four buffers per list, and clients such as Open WebUI ask for the list often.
        var output = new ArrayBufferWriter<byte>((upstream?.Length ?? 0) + (models.Count * 512) + 64);
        using (var writer = new Utf8JsonWriter(output, JsonOutput.WriterOptions))
        {
            writer.WriteStartObject();
            if (openAiList)
            {
                writer.WriteString("object", "list");
            }

            writer.WriteStartArray(listProperty);
            foreach (var model in models)
            {
                JsonSerializer.Serialize(writer, entryOf(model), typeInfo);
            }

            using var document = upstream is null ? null : TryParse(upstream);
            if (document?.RootElement is { ValueKind: JsonValueKind.Object } root
                && root.TryGetProperty(listProperty, out var entries)
                && entries.ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in entries.EnumerateArray())
                {
                    var shadowed = entry.ValueKind == JsonValueKind.Object
                        && entry.TryGetProperty(keyProperty, out var key)
                        && TextOf(key) is { } name
                        && IsClaudeName(name, models);
                    if (!shadowed)
                    {
                        // As Ollama wrote it, byte for byte (even what a string cannot hold, such as a lone surrogate's escape).
                        writer.WriteRawValue(JsonMarshal.GetRawUtf8Value(entry), skipInputValidation: true);
                    }
                }
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return output.WrittenSpan.ToArray();
    }

    /// <remarks>An indexed loop over the few Claude models: no set built for every list, no enumerator for every entry.</remarks>
    private static bool IsClaudeName(string name, IReadOnlyList<ClaudeModelOptions> models)
    {
        for (var i = 0; i < models.Count; i++)
        {
            if (string.Equals(models[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A JSON string's text; null for any other value, or for an escape no string can hold (a lone surrogate).</summary>
    private static string? TextOf(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>An OpenAI list entry's <c>created</c>, when it is a time a date can hold.</summary>
    private static DateTimeOffset? CreatedOf(JsonElement entry) =>
        entry.TryGetProperty("created", out var seconds) && seconds.ValueKind == JsonValueKind.Number && seconds.TryGetInt64(out var unix)
            && unix >= DateTimeOffset.MinValue.ToUnixTimeSeconds() && unix <= DateTimeOffset.MaxValue.ToUnixTimeSeconds()
            ? DateTimeOffset.FromUnixTimeSeconds(unix)
            : null;

    /// <summary>An upstream's JSON, or null when it is none: not JSON, or (which JSON must not be) not UTF-8.</summary>
    private static JsonDocument? TryParse(byte[] json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            return null;
        }

        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static OllamaModelEntry TagEntry(ClaudeModelOptions model, DateTimeOffset modifiedAt) =>
        new(model.Name, model.Name, modifiedAt, 0, Digest(model), Details);

    /// <summary>A stable 64-hex digest, as Ollama clients expect one; it changes only when the model's mapping does.</summary>
    private static string Digest(ClaudeModelOptions model) => TextDigest.Sha256Hex($"{model.Name}\n{model.CliModel}");
}
