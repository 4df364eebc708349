using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.Conversations;
using ClaudeProxy.Transforms.OpenAi;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ClaudeProxy.Transforms.Yarp;

public static class ClaudeDialectsBuilderExtensions
{
    /// <summary>
    /// Adds the dialect transforms (<see cref="ClaudeTransformProvider"/>), their options (<paramref name="dialects"/>,
    /// section <c>Dialects</c>) and what they keep between requests: the Responses API's previous responses, in Redis
    /// when the Claude backend has one (<see cref="SharedRedis"/>), so that every gateway before it finds them.
    /// </summary>
    public static IReverseProxyBuilder AddClaudeDialects(this IReverseProxyBuilder builder, IConfiguration dialects)
    {
        builder.Services.AddOptions<DialectOptions>().Bind(dialects);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSharedOrLocal<IResponsesHistory, RedisResponsesHistory, LocalResponsesHistory>();
        builder.Services.TryAddSingleton(provider => new DialectServices(provider.GetRequiredService<TimeProvider>(), provider.GetRequiredService<IResponsesHistory>()));
        return builder.AddTransforms<ClaudeTransformProvider>();
    }
}
