using System.Threading.Channels;
using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Cli;

/// <summary>
/// A CLI process that stays up between the turns of one kept conversation. Its stdin stays open and each turn is one
/// more user line, answered from the history the CLI holds in memory; a turn's output ends at its <c>result</c> line.
/// Closing stdin ends it the way the CLI ends by itself, with its session file written out for a later <c>--resume</c>.
/// </summary>
internal sealed class ResidentClaudeProcess
{
    private readonly Channel<string> _input = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ClaudeCliProcess _process;

    /// <param name="invocation">How to start it: a session to create (<c>--session-id</c>) or to resume.</param>
    /// <param name="fingerprint">
    /// What the process runs with (model, tools, system prompt): a turn asking for anything else needs another process.
    /// Null for a warm spare, whose system prompt comes when it is claimed (<see cref="Claim"/>).
    /// </param>
    public ResidentClaudeProcess(CliWrapClaudeLauncher launcher, ClaudeCliInvocation invocation, string? fingerprint)
    {
        Fingerprint = fingerprint;
        CliModel = invocation.CliModel;
        Session = new ClaudeCliSession(invocation.SessionId!.Value, invocation.WorkingDirectory);
        SessionRemembered = invocation.SessionMode == ClaudeSessionMode.Resume;
        ToolServer = invocation.HasClientTools ? new ClientToolServer(invocation.ClientTools!, Send) : null;
        if (invocation.Initialization is { } initialization)
        {
            Send(initialization);
        }

        _process = launcher.Start(invocation, _input.Reader);
    }

    /// <summary>The effort, thinking and output limit the process runs its turns with now.</summary>
    public ClaudeCliSettings Settings { get; private set; }

    /// <summary>How long its last turn asked it to wait idle for the next (null: the configured idle timeout).</summary>
    public TimeSpan? KeepAlive { get; private set; }

    /// <summary>Serves the client's functions to the process, when it was started with them.</summary>
    public ClientToolServer? ToolServer { get; }

    public string? Fingerprint { get; private set; }

    /// <summary>The <c>--model</c> it runs.</summary>
    public string CliModel { get; }

    public ClaudeCliSession Session { get; }

    /// <summary>
    /// Whether the conversation is known to map to this process's session: it was resumed, or one of its turns succeeded
    /// (which is when the mapping is recorded). A new session interrupted in its first turn was never recorded, so the
    /// conversation's next turn will not look for it.
    /// </summary>
    public bool SessionRemembered { get; set; }

    public int TurnsServed { get; private set; }

    /// <summary>The total cost of the process's run as its last result reported it (<c>total_cost_usd</c> adds up).</summary>
    public double CostReported { get; set; }

    public Task<ClaudeCliExit> Exited => _process.Exited;

    internal ChannelReader<string> Output => _process.Output;

    public long? ResidentMemoryBytes() => _process.ResidentMemoryBytes();

    /// <summary>Gives a waiting spare its conversation's system prompt and output schema (an <c>initialize</c> control request).</summary>
    public void Claim(ClaudeCliInvocation invocation)
    {
        Fingerprint = invocation.Fingerprint;
        _input.Writer.TryWrite(CliControlRequest.Initialize(invocation.SystemPrompt, invocation.OutputSchema));
    }

    /// <summary>Sends the turn's settings and input. One turn at a time: the conversation's turn lock sees to that.</summary>
    /// <param name="onEnded">Called once the turn is over and disposed, to keep or end the process.</param>
    public ResidentClaudeTurn BeginTurn(ClaudeCliInvocation invocation, Action<ResidentClaudeTurn> onEnded)
    {
        TurnsServed++;
        while (_process.Output.TryRead(out _))
        {
            // Nothing printed between turns belongs to the new one.
        }

        foreach (var line in invocation.TurnInput(Settings))
        {
            _input.Writer.TryWrite(line);
        }

        (Settings, KeepAlive) = (invocation.Settings, invocation.KeepAlive);
        return new ResidentClaudeTurn(this, onEnded);
    }

    internal void Send(string line) => _input.Writer.TryWrite(line);

    /// <summary>Closes stdin and waits for the CLI to exit by itself; after <paramref name="grace"/> it is killed.</summary>
    public async Task CloseAsync(TimeSpan grace)
    {
        _input.Writer.TryComplete();
        try
        {
            await _process.Exited.WaitAsync(grace);
        }
        catch (TimeoutException)
        {
            // It did not leave on its own; disposal kills it.
        }

        await _process.DisposeAsync();
    }

    public ValueTask KillAsync() => _process.DisposeAsync();
}

/// <summary>
/// One turn on a <see cref="ResidentClaudeProcess"/>. Its output ends at the turn's <c>result</c> line, and
/// <see cref="Exited"/> completes then (exit code 0) while the process waits for the next turn; if the process ends
/// first, both end with it. Disposing a turn still being answered interrupts it with the CLI's <c>interrupt</c> control
/// request instead of killing the process, which is killed only if it does not finish the turn within a grace period.
/// </summary>
internal sealed class ResidentClaudeTurn : IClaudeCliRun
{
    private static readonly TimeSpan InterruptGrace = TimeSpan.FromSeconds(2);

    private readonly Channel<string> _output = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<ClaudeCliExit> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<ResidentClaudeTurn> _onEnded;
    private readonly Task _pump;
    private volatile bool _interrupted;
    private int _disposed;

    public ResidentClaudeTurn(ResidentClaudeProcess process, Action<ResidentClaudeTurn> onEnded)
    {
        Process = process;
        _onEnded = onEnded;
        _pump = PumpAsync();
    }

    public ResidentClaudeProcess Process { get; }

    public ChannelReader<string> Output => _output.Reader;

    public Task<ClaudeCliExit> Exited => _ended.Task;

    public ClaudeCliSession Session => Process.Session;

    /// <summary>Whether the turn ended with a successful result.</summary>
    public bool Succeeded => _resultSucceeded || _answerComplete;

    /// <summary>
    /// Whether the process is fit for the conversation's next turn: the turn succeeded, or ended with the result of an
    /// interrupt the gateway sent. After an API error, a kill, or an answer the gateway refused, it is not.
    /// </summary>
    public bool LeftProcessClean => (Succeeded || _interrupted) && !_spoiled;

    private volatile bool _resultSucceeded;
    private volatile bool _spoiled;
    private volatile bool _answerComplete;

    /// <summary>The gateway refused the turn's answer (it did not match the output schema): the process is not kept.</summary>
    public void Spoil() => _spoiled = true;

    /// <summary>
    /// The client has its whole answer (it ended at a stop sequence or the output limit) and the gateway interrupts the
    /// rest: the turn counts as a success, whose session the conversation keeps.
    /// </summary>
    public void AnswerComplete() => _answerComplete = true;

    private async Task PumpAsync()
    {
        var output = Process.Output;
        while (await output.WaitToReadAsync())
        {
            while (output.TryRead(out var line))
            {
                if (Process.ToolServer?.TryAnswer(line) == true)
                {
                    // The CLI's MCP handshake with the client's functions: nothing the turn needs to see.
                    continue;
                }

                _output.Writer.TryWrite(line);
                if (CliLine.AsResult(line) is { } result)
                {
                    // Read when the turn is disposed: the gateway may mark the answer complete after the result is in.
                    _resultSucceeded = result.Subtype == "success" && result.IsError != true;
                    _output.Writer.TryComplete();
                    _ended.TrySetResult(new ClaudeCliExit(0, ""));
                    return;
                }
            }
        }

        _output.Writer.TryComplete();
        _ended.TrySetResult(await Process.Exited);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_ended.Task.IsCompleted)
        {
            // The client left (or the answer went silent) mid-turn. The CLI then records the partial answer and
            // "[Request interrupted by user]" in the conversation, as a cold process's session file would.
            _interrupted = true;
            Process.Send(CliControlRequest.Interrupt());
            try
            {
                await _ended.Task.WaitAsync(InterruptGrace);
            }
            catch (TimeoutException)
            {
                await Process.KillAsync();
            }
        }

        await _pump;
        _onEnded(this);
    }
}
