using WireMock;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace ClaudeProxy.Gateway.Tests.Infrastructure;

/// <summary>
/// WireMock.Net standing in for Ollama on 127.0.0.1, answering with bodies in the shape Ollama's API documentation
/// gives. Tests add or override mappings for their own cases.
/// </summary>
public sealed class FakeOllama : IDisposable
{
    public const string Version = """{"version":"0.13.5"}""";

    public const string Tags = """{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2025-05-04T17:37:44.706015396-07:00","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}},{"name":"claude-sonnet:latest","model":"claude-sonnet:latest","modified_at":"2025-05-01T10:00:00-07:00","size":1,"digest":"0000000000000000000000000000000000000000000000000000000000000000","details":{"parent_model":"","format":"gguf","family":"impostor","families":["impostor"],"parameter_size":"1B","quantization_level":"Q4_0"}}]}""";

    public const string Ps = """{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","size":3340000000,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"},"expires_at":"2025-10-26T17:26:21.196249-07:00","size_vram":3340000000,"context_length":4096}]}""";

    public const string OpenAiModels = """{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":1746405464,"owned_by":"library"}]}""";

    public static readonly string[] ChatLines =
    [
        """{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455Z","message":{"role":"assistant","content":"The"},"done":false}""",
        """{"model":"llama3.2","created_at":"2023-08-04T08:52:19.485406455Z","message":{"role":"assistant","content":" sky"},"done":false}""",
        """{"model":"llama3.2","created_at":"2023-08-04T08:52:19.585406455Z","message":{"role":"assistant","content":" is blue."},"done":false}""",
        """{"model":"llama3.2","created_at":"2025-07-07T20:22:19.19314Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":182242375,"load_duration":41295167,"prompt_eval_count":169,"prompt_eval_duration":24573166,"eval_count":15,"eval_duration":115959084}""",
    ];

    private FakeOllama()
    {
        Server = WireMockServer.Start(new WireMockServerSettings { Urls = ["http://127.0.0.1:0"] });
        Get("/api/version", Version);
        Get("/api/tags", Tags);
        Get("/api/ps", Ps);
        Get("/v1/models", OpenAiModels);
        Server.Given(Request.Create().WithPath("/api/chat").UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/x-ndjson").WithBody(string.Join("\n", ChatLines) + "\n"));
    }

    public WireMockServer Server { get; }

    public string Url => Server.Url!;

    public static FakeOllama Start() => new();

    public void Get(string path, string json, int status = 200) =>
        Server.Given(Request.Create().WithPath(path).UsingGet())
            .RespondWith(Response.Create().WithStatusCode(status).WithHeader("Content-Type", "application/json; charset=utf-8").WithBody(json));

    /// <summary>Answers <paramref name="path"/> with NDJSON lines written <paramref name="spacing"/> apart.</summary>
    public void StreamLines(string path, IReadOnlyList<string> lines, TimeSpan spacing) =>
        Server.Given(Request.Create().WithPath(path).UsingPost())
            .RespondWith(Response.Create().WithHeader("Content-Type", "application/x-ndjson").WithSseBody(async (_, queue) =>
            {
                foreach (var line in lines)
                {
                    queue.Write(line + "\n");
                    await Task.Delay(spacing);
                }

                queue.Close();
            }));

    /// <summary>
    /// The last request Ollama received for <paramref name="path"/>. (Not simply the last request: the gateway's
    /// active health checks ask for /api/version whenever they like.)
    /// </summary>
    public IRequestMessage LastRequestTo(string path) => Server.LogEntries.Last(e => e.RequestMessage!.Path == path).RequestMessage!;

    public void Dispose() => Server.Stop();
}
