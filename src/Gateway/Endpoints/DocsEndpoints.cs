using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ClaudeProxy.Transforms;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace ClaudeProxy.Gateway.Endpoints;

/// <summary>
/// <c>/docs</c>: interactive API docs over the OpenAPI document at <c>/openapi/v1.json</c>, generated from the wire
/// records: the discovery endpoints describe themselves, <see cref="ProxyRoutesDocumentTransformer"/> adds the YARP routes.
/// </summary>
internal static class DocsEndpoints
{
    public const string DocumentPath = "/openapi/v1.json";

    /// <summary>The tag that groups an API's operations in the docs, by the errors its clients read.</summary>
    public static string TagOf(ErrorStyle style) => style switch
    {
        ErrorStyle.OpenAi => "OpenAI",
        ErrorStyle.Anthropic => "Anthropic",
        _ => "Ollama",
    };

    public static IServiceCollection AddDocs(this IServiceCollection services)
    {
        // Both APIs spell their JSON in snake_case, as the codecs write the records: the schemas name them so too.
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiWireTypes.JsonResolver);
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        });
        services.AddOpenApi("v1", options => options
            .AddDocumentTransformer<ProxyRoutesDocumentTransformer>()
            .AddSchemaTransformer((schema, context, _) =>
            {
                OptionalWhenNullable(schema, context.JsonTypeInfo);
                return Task.CompletedTask;
            }));
        return services;
    }

    /// <summary>
    /// The records take every field in their constructor, so the generator calls them all required; a field the record
    /// lets be null, or keeps as raw JSON (absent is then undefined), is one the client may leave out (the codecs say
    /// which of those a request really needs).
    /// </summary>
    private static void OptionalWhenNullable(OpenApiSchema schema, JsonTypeInfo type)
    {
        if (schema.Required is not { Count: > 0 } required)
        {
            return;
        }

        foreach (var property in type.Properties.Where(p => p.IsSetNullable || p.PropertyType == typeof(JsonElement)))
        {
            required.Remove(property.Name);
        }
    }

    public static IEndpointRouteBuilder MapDocs(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/docs", options => options
            .WithTitle("ClaudeProxy API")
            .WithOpenApiRoutePattern(DocumentPath)
            // No web fonts: the page must work on a machine without internet access.
            .DisableDefaultFonts());
        return app;
    }
}
