using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>
/// The JSON schema a structured answer must match (<see cref="Contract.ClaudeTurnOptions.OutputSchema"/>). The CLI gets
/// it too and offers the model a <c>StructuredOutput</c> tool to fill; the gateway checks what comes back all the same,
/// so an answer that does not match reaches the client as an error, never as content.
/// </summary>
internal sealed class StructuredAnswer
{
    private readonly JsonSchema _schema;

    private StructuredAnswer(JsonSchema schema) => _schema = schema;

    /// <summary>The schema, read; null with <paramref name="problem"/> when it is not a valid JSON schema object.</summary>
    public static StructuredAnswer? TryCreate(JsonElement schema, out string? problem)
    {
        problem = null;
        if (schema.ValueKind != JsonValueKind.Object)
        {
            problem = "the output schema must be a JSON object";
            return null;
        }

        try
        {
            var node = JsonNode.Parse(schema.GetRawText());
            if (MetaSchemas.Draft202012.Evaluate(node, new EvaluationOptions { OutputFormat = OutputFormat.List }) is { IsValid: false } invalid)
            {
                problem = $"the output schema is not a valid JSON schema: {ErrorsOf(invalid)}";
                return null;
            }

            return new StructuredAnswer(JsonSchema.FromText(schema.GetRawText()));
        }
        catch (Exception exception) when (exception is JsonException or ArgumentException or InvalidOperationException or UriFormatException or RefResolutionException)
        {
            problem = $"the output schema is not a valid JSON schema: {exception.Message}";
            return null;
        }
    }

    /// <summary>Why <paramref name="answer"/> does not match the schema, or null when it does.</summary>
    public string? ProblemOf(JsonElement answer)
    {
        try
        {
            // Options of its own, so a client's $id never lands in a registry another request sees.
            var results = _schema.Evaluate(JsonNode.Parse(answer.GetRawText()), new EvaluationOptions { OutputFormat = OutputFormat.List });
            return results.IsValid ? null : ErrorsOf(results);
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or RefResolutionException)
        {
            return exception.Message;
        }
    }

    private static string ErrorsOf(EvaluationResults results)
    {
        var errors = (results.Details ?? [])
            .Where(d => d.HasErrors)
            .SelectMany(d => d.Errors!.Select(e => $"{(d.InstanceLocation.ToString() is { Length: > 0 } at ? at : "/")}: {e.Value}"))
            .Take(5)
            .ToList();
        return errors.Count > 0 ? string.Join("; ", errors) : "it does not match the schema";
    }
}
