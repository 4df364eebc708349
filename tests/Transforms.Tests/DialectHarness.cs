using System.Text;
using ClaudeProxy.ClaudeBackend.Contract;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Transforms.Tests;

/// <summary>Runs a dialect over recorded CLI output the way the response transform does.</summary>
internal static class DialectHarness
{
    public static DialectRequest Parse(ClaudeDialect dialect, string json)
    {
        var request = dialect.Parse(Encoding.UTF8.GetBytes(json), TimeProvider.System, out var immediate);
        Assert.Null(immediate);
        return Assert.IsType<DialectRequest>(request);
    }

    /// <summary>What a streaming client receives for the fixture's stdout.</summary>
    public static async Task<string> StreamAsync(ClaudeDialect dialect, DialectRequest request, IEnumerable<string> backendLines)
    {
        var backend = new MemoryStream(Encoding.UTF8.GetBytes(string.Join("\n", backendLines) + "\n"));
        await using var answer = new ClaudeAnswerStream(new ClaudeEventReader(backend), dialect.CreateWriter(request, TimeProvider.System, TimeProvider.System.GetTimestamp()), timer: null);
        using var reader = new StreamReader(answer);
        return await reader.ReadToEndAsync(TestContext.Current.CancellationToken);
    }

    public static Task<string> StreamAsync(ClaudeDialect dialect, DialectRequest request, string fixture) =>
        StreamAsync(dialect, request, Fixtures.StdoutLines(fixture));

    public static string GatewayErrorLine(ClaudeErrorKind kind, string message) =>
        System.Text.Json.JsonSerializer.Serialize(new { type = "gateway_error", error = new { kind = kind.ToString(), message } });
}
