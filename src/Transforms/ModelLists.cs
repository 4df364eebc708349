using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Transforms.Ollama;
using ClaudeProxy.Transforms.OpenAi;

namespace ClaudeProxy.Transforms;

/// <summary>The Claude models in the shapes of Ollama's and OpenAI's model endpoints.</summary>
public static class ModelLists
{
    private const string Family = "claude";
    private static readonly OllamaModelDetails Details = new("", "claude-code-cli", Family, [Family], "", "");

    /// <summary>What the gateway can really do with a Claude model: chat, images in, thinking out. Tools are off.</summary>
    private static readonly string[] Capabilities = ["completion", "vision", "thinking"];

    public static byte[] OllamaVersion(string version) =>
        JsonOutput.ToBytes(new OllamaVersion(version), DialectJsonContext.Default.OllamaVersion);

    public static byte[] OllamaTags(IEnumerable<ClaudeModelOptions> models, DateTimeOffset modifiedAt) =>
        JsonOutput.ToBytes(new OllamaTags(models.Select(m => TagEntry(m, modifiedAt)).ToList()), DialectJsonContext.Default.OllamaTags);

    /// <summary>Claude models hold no memory on this machine, so none is ever "running".</summary>
    public static byte[] OllamaRunning() =>
        JsonOutput.ToBytes(new OllamaTags([]), DialectJsonContext.Default.OllamaTags);

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

    public static byte[] OpenAiModels(IEnumerable<ClaudeModelOptions> models, DateTimeOffset created) =>
        JsonOutput.ToBytes(new OpenAiModelList(models.Select(m => OpenAiModelOf(m.Name, created)).ToList()), DialectJsonContext.Default.OpenAiModelList);

    public static byte[] OpenAiModel(string id, DateTimeOffset created) =>
        JsonOutput.ToBytes(OpenAiModelOf(id, created), DialectJsonContext.Default.OpenAiModel);

    private static OpenAiModel OpenAiModelOf(string id, DateTimeOffset created) => new(id, created.ToUnixTimeSeconds(), "anthropic");

    private static OllamaModelEntry TagEntry(ClaudeModelOptions model, DateTimeOffset modifiedAt) =>
        new(model.Name, model.Name, modifiedAt, 0, Digest(model), Details);

    /// <summary>A stable 64-hex digest, as Ollama clients expect one; it changes only when the model's mapping does.</summary>
    private static string Digest(ClaudeModelOptions model) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{model.Name}\n{model.CliModel}")));
}
