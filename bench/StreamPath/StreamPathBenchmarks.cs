using System.Buffers;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using ClaudeProxy.ClaudeBackend;
using ClaudeProxy.ClaudeBackend.StreamJson;
using ClaudeProxy.TestSupport;
using ClaudeProxy.Transforms;

namespace ClaudeProxy.Bench.StreamPath;

/// <summary>
/// The streamed path per token, from a CLI line to the client's bytes, for a whole turn of <see cref="Tokens"/> text
/// deltas (figures are per token: <c>OperationsPerInvoke</c>). Three forms, measured in the same run:
/// <list type="bullet">
/// <item><see cref="ParsedTwice"/>, the baseline: the hop before the typed one. The backend decoded each line, passed
/// it on as bytes, and the response transform decoded it again.</item>
/// <item><see cref="Typed"/>: the in-process hop today, each line decoded once into events the dialect writes.</item>
/// <item><see cref="Serialized"/>: the contract's bytes, as to a worker behind a socket: each event written as an
/// NDJSON line and read back.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class StreamPathBenchmarks
{
    private const int Tokens = 500;

    private string[] _lines = [];
    private ClaudeDialect _dialect = null!;
    private DialectRequest _request = null!;
    private static readonly DialectServices Services = new(TimeProvider.System, new ClaudeProxy.Transforms.OpenAi.LocalResponsesHistory());
    private readonly List<ClaudeStreamEvent> _events = [];
    private readonly List<ClaudeStreamEvent> _secondPass = [];
    private readonly ArrayBufferWriter<byte> _output = new();
    private readonly ArrayBufferWriter<byte> _wire = new();

    [Params("ollama-chat", "openai-chat")]
    public string Dialect { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        if (!ClaudeDialects.TryGet(Dialect, out var dialect))
        {
            throw new InvalidOperationException($"No dialect '{Dialect}'.");
        }

        _dialect = dialect;
        _request = dialect.Parse("""{"model":"claude-sonnet:latest","stream":true,"messages":[{"role":"user","content":"hi"}]}"""u8.ToArray(), TimeProvider.System, out _)
            ?? throw new InvalidOperationException("The request did not parse.");

        // A recorded turn with its one text delta repeated as Tokens deltas of a word each.
        var recorded = Fixtures.StdoutLines("print_stream_json_partial");
        var firstDelta = Array.FindIndex(recorded, l => l.Contains("\"text_delta\"", StringComparison.Ordinal));
        var lastDelta = Array.FindLastIndex(recorded, l => l.Contains("\"text_delta\"", StringComparison.Ordinal));
        var delta = recorded[firstDelta];
        var text = JsonDocument.Parse(delta).RootElement.GetProperty("event").GetProperty("delta").GetProperty("text").GetString()!;
        _lines =
        [
            .. recorded[..firstDelta],
            .. Enumerable.Range(0, Tokens).Select(i => delta.Replace($"\"text\":\"{text}\"", $"\"text\":\"word{i} \"", StringComparison.Ordinal)),
            .. recorded[(lastDelta + 1)..],
        ];
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Tokens)]
    public long ParsedTwice()
    {
        var backend = new ClaudeStreamDecoder();
        var transform = new ClaudeStreamDecoder();
        var writer = _dialect.CreateWriter(_request, Services, 0);
        long written = 0;
        foreach (var line in _lines)
        {
            _events.Clear();
            backend.Decode(line, _events);
            var bytes = Encoding.UTF8.GetBytes(line + "\n");
            _secondPass.Clear();
            transform.Decode(bytes.AsSpan(0, bytes.Length - 1), _secondPass);
            written += Write(writer, _secondPass);
        }

        return written;
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public long Typed()
    {
        var decoder = new ClaudeStreamDecoder();
        var writer = _dialect.CreateWriter(_request, Services, 0);
        long written = 0;
        foreach (var line in _lines)
        {
            _events.Clear();
            decoder.Decode(line, _events);
            written += Write(writer, _events);
        }

        return written;
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public long Serialized()
    {
        var decoder = new ClaudeStreamDecoder();
        var writer = _dialect.CreateWriter(_request, Services, 0);
        long written = 0;
        foreach (var line in _lines)
        {
            _events.Clear();
            decoder.Decode(line, _events);
            _secondPass.Clear();
            foreach (var streamEvent in _events)
            {
                _wire.ResetWrittenCount();
                using (var json = new Utf8JsonWriter(_wire))
                {
                    JsonSerializer.Serialize(json, streamEvent, ClaudeBackendJsonContext.Default.ClaudeStreamEvent);
                }

                _secondPass.Add(JsonSerializer.Deserialize(_wire.WrittenSpan, ClaudeBackendJsonContext.Default.ClaudeStreamEvent)!);
            }

            written += Write(writer, _secondPass);
        }

        return written;
    }

    private long Write(AnswerWriter writer, List<ClaudeStreamEvent> events)
    {
        _output.ResetWrittenCount();
        foreach (var streamEvent in events)
        {
            writer.WriteStreamEvent(streamEvent, _output);
        }

        return _output.WrittenCount;
    }
}
