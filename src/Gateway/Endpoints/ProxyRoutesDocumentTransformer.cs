using ClaudeProxy.Gateway.ModelRouting;
using ClaudeProxy.Transforms;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Yarp.ReverseProxy;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary>
/// Adds the API's YARP routes to the generated OpenAPI document, which sees only the discovery endpoints by itself:
/// each route that names a dialect (chat, generate, chat completions) and the model routes the gateway answers for Claude
/// models (<c>/api/show</c>, <c>/v1/models/{id}</c>). Schemas come from the wire records the codecs read and write; only
/// the prose is written here. Routes that only forward to Ollama are Ollama's to document.
/// </summary>
internal sealed class ProxyRoutesDocumentTransformer(IProxyStateLookup proxy) : IOpenApiDocumentTransformer
{
    private static readonly Dictionary<string, (string Summary, string Description)> DialectProse = new(StringComparer.Ordinal)
    {
        ["ollama-chat"] = ("Chat", "`stream` defaults to true: `application/x-ndjson`, one chunk per line, ending with one `done:true` chunk carrying `done_reason` and the CLI's real token counts and durations (nanoseconds). A failure after the stream started is one last `{\"error\":\"...\"}` line. `id` (or `user`) keeps a conversation in a Claude session, so only the new turn is sent. A model that is not Claude's goes to the Ollama behind the gateway."),
        ["ollama-generate"] = ("Generate from a prompt", "As `/api/chat`, for one prompt (and an optional `system`). A model that is not Claude's goes to the Ollama behind the gateway."),
        ["openai-chat"] = ("Chat completions", "`stream` defaults to false. Streams are `text/event-stream` frames `data: {chunk}`, a finish chunk, a usage chunk when `stream_options.include_usage` is set, and `data: [DONE]`. A failure after the stream started is an `{\"error\":…}` frame. A model that is not Claude's goes to the Ollama behind the gateway."),
    };

    public async Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info.Title = "ClaudeProxy";
        document.Info.Description = "Claude through the Claude Code CLI behind the Ollama and OpenAI APIs. Chat endpoints pick the backend from the body's `model`: a Claude model (see `/api/tags`) runs the local `claude` CLI. Request bodies are read as JSON whatever their Content-Type.";
        document.Paths ??= [];
        foreach (var route in proxy.GetRoutes().Select(r => r.Config).OrderBy(r => r.Order ?? 0).ThenBy(r => r.RouteId, StringComparer.Ordinal))
        {
            var metadata = route.Metadata ?? new Dictionary<string, string>();
            var path = route.Match.Path;
            if (path is null || document.Paths.ContainsKey(path))
            {
                continue;
            }

            var style = RouteMetadata.ErrorStyleOf(metadata);
            OpenApiOperation? operation = null;
            var method = HttpMethod.Post;
            if (metadata.TryGetValue(RouteMetadata.DialectKey, out var name) && ClaudeDialects.TryGet(name, out var dialect))
            {
                var (summary, description) = DialectProse.GetValueOrDefault(dialect.Name, (dialect.Name, ""));
                operation = await OperationAsync(document, context, summary, description, dialect.WireTypes.Request, style, cancellationToken);
                operation.Responses!["200"] = new OpenApiResponse
                {
                    Description = "The answer, or its stream.",
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = await SchemaAsync(document, context, dialect.WireTypes.Answer, cancellationToken) },
                        [dialect.StreamContentType] = new() { Schema = await SchemaAsync(document, context, dialect.WireTypes.StreamChunk, cancellationToken) },
                    },
                };
            }
            else if (metadata.GetValueOrDefault(RouteMetadata.ClaudeModelAnswer) == "show")
            {
                operation = await OperationAsync(document, context, "Model details and capabilities", "", ApiWireTypes.OllamaShowRequest, style, cancellationToken);
                operation.Responses!["200"] = await JsonResponseAsync(document, context, "The model's details.", ApiWireTypes.OllamaShowResponse, cancellationToken);
            }
            else if (metadata.GetValueOrDefault(RouteMetadata.ClaudeModelAnswer) == "openai-model")
            {
                method = HttpMethod.Get;
                // The route's catch-all ({**model}) lets model names hold '/'; the document names it as one parameter.
                path = path.Replace("{**model}", "{id}", StringComparison.Ordinal);
                operation = await OperationAsync(document, context, "One model", "", requestBody: null, style, cancellationToken);
                operation.Parameters = [new OpenApiParameter { Name = "id", In = ParameterLocation.Path, Required = true, Schema = new OpenApiSchema { Type = JsonSchemaType.String } }];
                operation.Responses!["200"] = await JsonResponseAsync(document, context, "The model.", ApiWireTypes.OpenAiModel, cancellationToken);
            }

            if (operation is not null)
            {
                document.Paths[path] = new OpenApiPathItem { Operations = new() { [method] = operation } };
            }
        }
    }

    private static async Task<OpenApiOperation> OperationAsync(
        OpenApiDocument document, OpenApiDocumentTransformerContext context, string summary, string description, Type? requestBody, ErrorStyle style, CancellationToken cancellationToken)
    {
        var error = await JsonResponseAsync(document, context, "An error, in the envelope this API's clients read.", ApiWireTypes.ErrorOf(style), cancellationToken);
        var operation = new OpenApiOperation
        {
            Summary = summary,
            Description = description.Length > 0 ? description : null,
            Tags = new HashSet<OpenApiTagReference> { new(DocsEndpoints.TagOf(style), document) },
            Responses = new OpenApiResponses { ["400"] = error, ["404"] = error, ["503"] = error },
        };
        if (requestBody is not null)
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = await SchemaAsync(document, context, requestBody, cancellationToken) } },
            };
        }

        return operation;
    }

    private static async Task<OpenApiResponse> JsonResponseAsync(
        OpenApiDocument document, OpenApiDocumentTransformerContext context, string description, Type type, CancellationToken cancellationToken) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = await SchemaAsync(document, context, type, cancellationToken) } },
    };

    /// <summary>The record's schema as a component of the document, by the record's name.</summary>
    private static async Task<IOpenApiSchema> SchemaAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, Type type, CancellationToken cancellationToken)
    {
        if (document.Components?.Schemas?.ContainsKey(type.Name) != true)
        {
            document.AddComponent(type.Name, await context.GetOrCreateSchemaAsync(type, cancellationToken: cancellationToken));
        }

        return new OpenApiSchemaReference(type.Name, document);
    }
}
