using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.Transforms.Yarp;
using Yarp.ReverseProxy.Forwarder;

namespace ClaudeProxy.Gateway;

/// <summary>
/// Gives clusters marked <c>Backend: claude-cli</c> an invoker over the in-process <see cref="ClaudeBackendHandler"/>,
/// so the claude backend is just another YARP destination; every other cluster gets YARP's own client.
/// </summary>
internal sealed class ClaudeForwarderHttpClientFactory(
    ClaudeBackendHandler claudeBackend,
    Microsoft.Extensions.Options.IOptions<GatewayOptions> options,
    ILogger<ForwarderHttpClientFactory> logger)
    : IForwarderHttpClientFactory
{
    private readonly ForwarderHttpClientFactory _default = new(logger);

    /// <remarks>With workers, the claude cluster's destinations are real sockets: YARP's own client reaches them.</remarks>
    public HttpMessageInvoker CreateClient(ForwarderHttpClientContext context) =>
        !options.Value.HasWorkers
            && context.NewMetadata?.TryGetValue(ClaudeTransformProvider.BackendMetadataKey, out var backend) == true
            && backend == ClaudeTransformProvider.ClaudeBackendName
            // The handler is a singleton shared by every client YARP builds; the invoker must not dispose it.
            ? new HttpMessageInvoker(claudeBackend, disposeHandler: false)
            : _default.CreateClient(context);
}
