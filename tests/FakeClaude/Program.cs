// A stand-in for the `claude` CLI, for the cases the real CLI cannot be made to produce on demand (crashes,
// garbage, hangs). It records how it was started and replays stream-json lines from a file.
//
// FAKE_CLAUDE_SCRIPT holds `key=value` pairs separated by `;`:
//   replay=<file>      the lines to print (default: a plain successful answer)
//   delay-ms=<n>       pause before each line
//   garbage            print a line that is not JSON before each turn
//   crash-after=<n>    exit abruptly with code 3 after n lines
//   hang-after=<n>     stop printing after n lines and wait forever
//   stderr=<text>      print this on stderr before exiting
//   exit-code=<n>      the exit code at the end (default 0)
//   ignore-interrupt   do not answer an interrupt control request (a CLI that is stuck)
//   quit-once=<file>   if <file> does not exist yet: create it, print the init line and exit 0 at the first turn,
//                      without an answer or a result (a process that ends early but cleanly); later starts answer
// A line "#hang" in the replayed file stops the output there and waits forever.
// Like the real CLI in stream-json mode it reads stdin a line at a time: each user line is a turn (the replay), an
// interrupt control request stops the turn being replayed with an error_during_execution result, and the process
// ends when stdin closes.
// FAKE_CLAUDE_LOG names a file that gets one JSON line per start, written at its first turn: pid, args, stdin so far,
// cwd, what cwd held, the system prompt.
// Like the real CLI (tests/Fixtures/session_files_per_working_directory) it keeps its state under CLAUDE_CONFIG_DIR or
// $HOME/.claude: projects/<cwd, every character but [A-Za-z0-9] a '-'>/memory for every run, and there
// <session id>.jsonl, a line per turn, for --session-id and --resume. (A --resume of a missing session still answers.)
using System.Text;
using System.Text.Json;

if (args is ["--version"])
{
    Console.WriteLine("2.1.197 (Claude Code)");
    return 0;
}

var script = (Environment.GetEnvironmentVariable("FAKE_CLAUDE_SCRIPT") ?? "")
    .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
    .Select(part => part.Split('=', 2))
    .ToDictionary(pair => pair[0], pair => pair.Length > 1 ? pair[1] : "");

int Number(string key, int fallback) => script.TryGetValue(key, out var value) ? int.Parse(value) : fallback;

var lines = script.TryGetValue("replay", out var file)
    ? await File.ReadAllLinesAsync(file)
    :
    [
        """{"type":"system","subtype":"init","session_id":"00000000-0000-0000-0000-000000000001","tools":[],"model":"fake"}""",
        """{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"fake answer"}}}""",
        """{"type":"result","subtype":"success","is_error":false,"duration_ms":10,"num_turns":1,"result":"fake answer","stop_reason":"end_turn","session_id":"00000000-0000-0000-0000-000000000001","total_cost_usd":0.001,"usage":{"input_tokens":5,"output_tokens":2,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}""",
    ];

var sessionFile = SessionFile();
var delay = Number("delay-ms", 0);
var crashAfter = Number("crash-after", int.MaxValue);
var hangAfter = Number("hang-after", int.MaxValue);
var stdout = Console.Out;
var printing = new object();
void Print(string line)
{
    lock (printing)
    {
        stdout.WriteLine(line);
        stdout.Flush();
    }
}

async Task PlayTurnAsync(CancellationToken cancellationToken)
{
    try
    {
        await ReplayAsync(cancellationToken);
    }
    catch (OperationCanceledException)
    {
        // Interrupted: the interrupt's own answer follows.
    }
}

async Task ReplayAsync(CancellationToken cancellationToken)
{
    if (script.ContainsKey("garbage"))
    {
        Print("this is not json at all");
    }

    for (var i = 0; i < lines.Length; i++)
    {
        if (i == crashAfter)
        {
            Environment.Exit(3);
        }

        if (i == hangAfter || lines[i] == "#hang")
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        if (delay > 0)
        {
            await Task.Delay(delay, cancellationToken);
        }

        Print(lines[i]);
    }
}

async Task WriteLogAsync(string stdin)
{
    if (Environment.GetEnvironmentVariable("FAKE_CLAUDE_LOG") is { Length: > 0 } log)
    {
        var entry = new Dictionary<string, object>
        {
            ["pid"] = Environment.ProcessId,
            ["args"] = args,
            ["stdin"] = stdin,
            ["cwd"] = Environment.CurrentDirectory,
            ["cwdEntries"] = Directory.GetFileSystemEntries(Environment.CurrentDirectory),
            ["systemPrompt"] = Array.IndexOf(args, "--system-prompt-file") is var at and >= 0 ? File.ReadAllText(args[at + 1]) : "",
        };
        await File.AppendAllTextAsync(log, JsonSerializer.Serialize(entry) + "\n");
    }
}

string? SessionFile()
{
    var configDirectory = Environment.GetEnvironmentVariable("CLAUDE_CONFIG_DIR") is { Length: > 0 } configured
        ? configured
        : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".claude");
    var cwd = Environment.CurrentDirectory;
    var project = Path.Combine(configDirectory, "projects", string.Concat(cwd.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')));
    Directory.CreateDirectory(Path.Combine(project, "memory"));
    var at = Array.FindIndex(args, a => a is "--session-id" or "--resume");
    return at >= 0 && at + 1 < args.Length ? Path.Combine(project, args[at + 1] + ".jsonl") : null;
}

static string ControlResponse(string? requestId) =>
    "{\"type\":\"control_response\",\"response\":{\"subtype\":\"success\",\"request_id\":" + JsonSerializer.Serialize(requestId) + "}}";

var stdinSoFar = new StringBuilder();
var turns = 0;
Task turn = Task.CompletedTask;
CancellationTokenSource turnCancel = new();
while (await Console.In.ReadLineAsync() is { } input)
{
    stdinSoFar.Append(input).Append('\n');
    if (input.Contains("\"control_request\"", StringComparison.Ordinal))
    {
        var requestId = JsonDocument.Parse(input).RootElement.GetProperty("request_id").GetString();
        if (input.Contains("\"interrupt\"", StringComparison.Ordinal))
        {
            if (script.ContainsKey("ignore-interrupt"))
            {
                continue;
            }

            var running = !turn.IsCompleted;
            await turnCancel.CancelAsync();
            await turn;
            Print(ControlResponse(requestId));
            if (running)
            {
                Print("""{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":1,"session_id":"00000000-0000-0000-0000-000000000001","total_cost_usd":0}""");
            }
        }
        else
        {
            Print(ControlResponse(requestId));
        }

        continue;
    }

    await turn;
    if (sessionFile is not null)
    {
        await File.AppendAllTextAsync(sessionFile, input + "\n");
    }

    if (turns++ == 0)
    {
        await WriteLogAsync(stdinSoFar.ToString());
        if (script.TryGetValue("quit-once", out var quitMarker) && !File.Exists(quitMarker))
        {
            await File.WriteAllTextAsync(quitMarker, "");
            Print(lines[0]);
            return 0;
        }
    }

    turnCancel = new CancellationTokenSource();
    turn = PlayTurnAsync(turnCancel.Token);
}

if (turns == 0)
{
    // No user line at all: answer anyway, as the fake always has.
    await WriteLogAsync(stdinSoFar.ToString());
    turn = PlayTurnAsync(CancellationToken.None);
}

await turn;
if (script.TryGetValue("stderr", out var error))
{
    Console.Error.WriteLine(error);
}

return Number("exit-code", 0);
