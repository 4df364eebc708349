namespace ClaudeProxy.ClaudeBackend.Contract;

public static class ClaudeBackendPaths
{
    /// <summary><c>POST</c> a <see cref="ClaudeTurnRequest"/> here to run one turn.</summary>
    public const string Turns = "/v1/turns";
}
