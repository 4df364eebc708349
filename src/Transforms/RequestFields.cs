using System.Globalization;
using System.Text.Json;
using ClaudeProxy.ClaudeBackend.Contract;

namespace ClaudeProxy.Transforms;

/// <summary>
/// The fields of a client's request beyond its messages, as one dialect reads them: what each becomes for the turn
/// (<see cref="ClaudeTurnOptions"/>), which are accepted but cannot reach the model (reported in
/// <see cref="IgnoredHeader"/>), and which are refused with a 400 that names them. The README's field table says which is which.
/// </summary>
internal sealed partial class RequestFields
{
    /// <summary>The response header that names the request fields the answer was made without.</summary>
    public const string IgnoredHeader = "x-claudeproxy-ignored";

    /// <summary>What a JSON-mode request without a schema asks for: one JSON object.</summary>
    private static readonly JsonElement AnyObject = JsonDocument.Parse("""{"type":"object"}""").RootElement.Clone();

    private readonly List<string> _ignored = [];
    private string? _effort;
    private bool? _thinking;
    private int? _maxOutputTokens;
    private List<string>? _stops;
    private JsonElement? _schema;
    private TimeSpan? _keepAlive;

    /// <summary>Whether the client asked to see the model's thinking.</summary>
    public bool ShowThinking { get; private set; }

    public IReadOnlyList<string> Ignored => _ignored;

    /// <summary>A field the CLI has no way to pass (sampling knobs): accepted, and named in <see cref="IgnoredHeader"/>.</summary>
    public void Ignore(string field, bool present)
    {
        if (present && _ignored.Count < MaxNamed)
        {
            // A name goes into a response header, and may be the client's own (an option's, an unknown field's): anything
            // but a plain field name's characters is replaced, and a body with thousands of them names the first few.
            _ignored.Add(UnsafeInHeader().Replace(field.Length > 64 ? field[..64] : field, "_"));
        }
    }

    /// <summary>The fields the dialect does not read at all: named as ignored, never dropped silently.</summary>
    public void Unknown(IReadOnlyDictionary<string, JsonElement>? fields)
    {
        foreach (var (field, value) in fields ?? new Dictionary<string, JsonElement>())
        {
            Ignore(field, value);
        }
    }

    /// <summary>How many ignored fields are named at most.</summary>
    private const int MaxNamed = 32;

    [System.Text.RegularExpressions.GeneratedRegex("[^A-Za-z0-9_.-]")]
    private static partial System.Text.RegularExpressions.Regex UnsafeInHeader();

    public void Ignore(string field, JsonElement value) => Ignore(field, value.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null));

    /// <summary>A field that would change the answer in a way the CLI cannot: the request is refused.</summary>
    public static DialectRequestException Refused(string field, string why) => new($"'{field}' is not supported: {why}", param: field);

    public void MaxOutputTokens(long? tokens, string field)
    {
        switch (tokens)
        {
            case null:
                return;
            case <= 0:
                throw new DialectRequestException($"'{field}' must be a positive number of tokens", param: field);
            default:
                _maxOutputTokens = (int)Math.Min(tokens.Value, int.MaxValue);
                return;
        }
    }

    /// <summary><c>stop</c>: a string or a list of strings.</summary>
    public void Stop(JsonElement stop, string field)
    {
        List<string> stops = stop.ValueKind switch
        {
            JsonValueKind.Undefined or JsonValueKind.Null => [],
            JsonValueKind.String => [stop.GetString()!],
            JsonValueKind.Array when stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String) => [.. stop.EnumerateArray().Select(s => s.GetString()!)],
            _ => throw new DialectRequestException($"'{field}' must be a string or a list of strings", param: field),
        };
        Stop(stops, field);
    }

    public void Stop(IReadOnlyList<string>? stops, string field)
    {
        if (stops is not { Count: > 0 })
        {
            return;
        }

        if (stops.Any(s => s.Length == 0))
        {
            throw new DialectRequestException($"'{field}' must not hold an empty string", param: field);
        }

        _stops = [.. stops];
    }

    /// <summary>A schema the answer must match; <c>null</c> schema means any JSON object.</summary>
    public void OutputSchema(JsonElement? schema, string field)
    {
        if (schema is { ValueKind: not JsonValueKind.Object })
        {
            throw new DialectRequestException($"'{field}' must be a JSON schema object", param: field);
        }

        _schema = schema ?? AnyObject;
    }

    /// <summary>Thinking on or off, and whether the client sees it; an effort level asks for thinking too.</summary>
    public void Thinking(bool on, string? effort = null)
    {
        _thinking = on ? null : false;
        _effort = effort;
        ShowThinking = on;
    }

    /// <summary>An effort level without a thinking switch (Anthropic's <c>output_config.effort</c>).</summary>
    public void Effort(string? effort, string field)
    {
        if (effort is null)
        {
            return;
        }

        if (!ClaudeTurnOptions.Efforts.Contains(effort))
        {
            throw new DialectRequestException($"'{field}' must be one of {string.Join(", ", ClaudeTurnOptions.Efforts)}", param: field);
        }

        _effort = effort;
    }

    /// <summary>
    /// OpenAI's <c>reasoning_effort</c> (<c>none</c>, <c>minimal</c>, <c>low</c>, <c>medium</c>, <c>high</c>, <c>xhigh</c>):
    /// <c>none</c> turns thinking off, <c>minimal</c> is the CLI's <c>low</c>; the others are the CLI's own.
    /// </summary>
    public void OpenAiReasoningEffort(string? effort, string field)
    {
        switch (effort)
        {
            case null:
                return;
            case "none":
                Thinking(false);
                return;
            case "minimal":
                Thinking(true, "low");
                return;
            case "low" or "medium" or "high" or "xhigh":
                Thinking(true, effort);
                return;
            default:
                throw new DialectRequestException($"'{field}' must be one of none, minimal, low, medium, high, xhigh", param: field);
        }
    }

    /// <summary>Ollama's <c>keep_alive</c>: seconds as a number, or a duration such as <c>"5m"</c>, <c>"1h30m"</c>, <c>"0"</c>; negative keeps it for ever.</summary>
    public void KeepAlive(JsonElement keepAlive)
    {
        _keepAlive = OllamaDuration(keepAlive);
    }

    public static TimeSpan? OllamaDuration(JsonElement value)
    {
        try
        {
            return ParseOllamaDuration(value);
        }
        catch (OverflowException)
        {
            // Longer than a TimeSpan holds: as good as for ever.
            return TimeSpan.MaxValue;
        }
    }

    private static TimeSpan? ParseOllamaDuration(JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.Number when value.TryGetDouble(out var seconds):
                return seconds < 0 ? TimeSpan.MaxValue : TimeSpan.FromSeconds(seconds);
            case JsonValueKind.String when value.GetString() is { } text:
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain) && !double.IsNaN(plain))
                {
                    return plain < 0 || double.IsInfinity(plain) ? TimeSpan.MaxValue : TimeSpan.FromSeconds(plain);
                }

                if (GoDuration().Match(text) is { Success: true } match && match.Length > 0)
                {
                    var total = TimeSpan.Zero;
                    foreach (System.Text.RegularExpressions.Capture part in match.Groups["part"].Captures)
                    {
                        var unit = part.Value.TrimStart('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.');
                        var amount = double.Parse(part.Value[..^unit.Length], CultureInfo.InvariantCulture);
                        total += unit switch
                        {
                            "h" => TimeSpan.FromHours(amount),
                            "m" => TimeSpan.FromMinutes(amount),
                            "s" => TimeSpan.FromSeconds(amount),
                            "ms" => TimeSpan.FromMilliseconds(amount),
                            _ => TimeSpan.Zero,
                        };
                    }

                    return match.Groups["sign"].Success ? TimeSpan.MaxValue : total;
                }

                break;
        }

        throw new DialectRequestException($"invalid keep_alive: {value.GetRawText()} (use seconds, or a duration such as \"5m\")", param: "keep_alive");
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(?<sign>-)?(?<part>\d+(\.\d+)?(h|ms|m|s))+$")]
    private static partial System.Text.RegularExpressions.Regex GoDuration();

    /// <summary>Ollama's <c>format</c>: <c>"json"</c> for any JSON object, or a JSON schema.</summary>
    public void OllamaFormat(JsonElement format)
    {
        switch (format.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
            case JsonValueKind.String when format.GetString() is "":
                return;
            case JsonValueKind.String when format.GetString() == "json":
                OutputSchema(null, "format");
                return;
            case JsonValueKind.Object:
                OutputSchema(format, "format");
                return;
            default:
                throw new DialectRequestException($"invalid format: {format.GetRawText()} (use \"json\" or a JSON schema)", param: "format");
        }
    }

    /// <summary>OpenAI's <c>response_format</c>: <c>text</c>, <c>json_object</c>, or <c>json_schema</c> with its <c>schema</c>.</summary>
    public void OpenAiResponseFormat(JsonElement format, string field)
    {
        if (format.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return;
        }

        var type = format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "text":
                return;
            case "json_object":
                OutputSchema(null, field);
                return;
            case "json_schema" when format.TryGetProperty("json_schema", out var wrapped) && wrapped.ValueKind == JsonValueKind.Object:
                // Chat completions nest the schema under json_schema; the Responses API's text.format has it flat.
                OutputSchema(wrapped.TryGetProperty("schema", out var nested) ? nested : null, field);
                return;
            case "json_schema" when format.TryGetProperty("schema", out var flat):
                OutputSchema(flat, field);
                return;
            default:
                throw new DialectRequestException($"'{field}' must be of type text, json_object or json_schema (with its schema)", param: field);
        }
    }

    /// <summary>Ollama's <c>think</c>: true or false, or a level (<c>low</c>, <c>medium</c>, <c>high</c>, <c>max</c>).</summary>
    public void OllamaThink(JsonElement think)
    {
        switch (think.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return;
            case JsonValueKind.True or JsonValueKind.False:
                Thinking(think.GetBoolean());
                return;
            case JsonValueKind.String when think.GetString() is "low" or "medium" or "high" or "max":
                Thinking(true, think.GetString());
                return;
            default:
                throw new DialectRequestException($"invalid think value: {think.GetRawText()} (use true, false, \"low\", \"medium\", \"high\" or \"max\")", param: "think");
        }
    }

    /// <summary>
    /// Ollama's <c>options</c>: <c>num_predict</c> (-1 and -2 mean no limit) and <c>stop</c> are honoured; the sampling and
    /// runtime knobs (<c>temperature</c>, <c>num_ctx</c>, …) cannot reach the model and are reported.
    /// </summary>
    public void OllamaOptions(JsonElement options)
    {
        if (options.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return;
        }

        if (options.ValueKind != JsonValueKind.Object)
        {
            throw new DialectRequestException("'options' must be an object", param: "options");
        }

        foreach (var option in options.EnumerateObject())
        {
            switch (option.Name)
            {
                case "num_predict" when option.Value.ValueKind == JsonValueKind.Number && option.Value.TryGetInt64(out var tokens):
                    MaxOutputTokens(tokens is -1 or -2 ? null : tokens, "options.num_predict");
                    break;
                case "num_predict":
                    throw new DialectRequestException("'options.num_predict' must be a whole number", param: "options.num_predict");
                case "stop":
                    Stop(option.Value, "options.stop");
                    break;
                default:
                    Ignore("options." + option.Name, option.Value);
                    break;
            }
        }
    }

    public ClaudeTurnOptions? Build() =>
        _effort is null && _thinking is null && _maxOutputTokens is null && _stops is null && _schema is null && _keepAlive is null
            ? null
            : new ClaudeTurnOptions(_effort, _thinking, _maxOutputTokens, _stops, _schema, _keepAlive);
}
