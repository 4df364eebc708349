using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend;

/// <summary>How the gateway runs the Claude Code CLI. Bound from the <c>ClaudeBackend</c> section.</summary>
public sealed class ClaudeBackendOptions
{
    public const string SectionName = "ClaudeBackend";

    /// <summary>The CLI executable: a name on PATH or a path (env <c>CLAUDE_CLI</c>).</summary>
    [Required]
    public string CliPath { get; set; } = "claude";

    /// <summary>
    /// Where conversation mappings, per-conversation working directories and the record of running CLI processes live.
    /// Default: <c>claudeproxy</c> in the user's local data folder. Made absolute when the options are bound.
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>
    /// How often the CLI retries a failed API call (<c>CLAUDE_CODE_MAX_RETRIES</c>). The CLI's default of 10 keeps a client
    /// waiting about 3 minutes on a 401 or 429; the gateway would rather answer the client.
    /// </summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>
    /// Sends each turn to the in-process backend as bytes (a JSON request, NDJSON events), exactly as a worker behind a
    /// socket gets it, instead of handing over the typed request and events. Off by default; the tests run with it too.
    /// </summary>
    public bool SerializedHop { get; set; }

    /// <summary>How many CLI processes may run at once; each takes about 0.75 CPU-seconds to start and 200-300 MB.</summary>
    [Range(1, 256)]
    public int MaxConcurrentProcesses { get; set; } = 8;

    /// <summary>How many turns may wait for a free process; beyond that a turn is refused at once ("server busy").</summary>
    [Range(0, 10_000)]
    public int MaxQueuedTurns { get; set; } = 64;

    /// <summary>How long a turn may wait in the queue before it is refused.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the CLI may take to start answering (first token or the turn's end). The CLI itself waits 300 s on a
    /// stalled API stream, so the gateway needs its own bound.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan FirstAnswerTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long the CLI may stay silent once it has started answering. Long answers are never cut: only silence is.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long a turn whose model called the client's functions waits, in its process, for the client to send their
    /// results; then the process is ended (results that come later rebuild the conversation).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ToolResultTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How many turns may wait for function results at once, each in its process (150-300 MB), which does not count
    /// against <see cref="MaxConcurrentProcesses"/> while it waits. Beyond this the one that waited the longest is ended.
    /// </summary>
    [Range(1, 1_000)]
    public int MaxPausedTurns { get; set; } = 16;

    /// <summary>
    /// How many CLI processes may stay up between turns for their kept conversations (those with an <c>id</c>), so the
    /// next turn skips the cold start. Each holds 150-300 MB; beyond this the conversation idle the longest gives way.
    /// 0 ends every process after its turn.
    /// </summary>
    [Range(0, 1_000)]
    public int MaxKeptProcesses { get; set; } = 16;

    /// <summary>How long a kept process waits for its conversation's next turn before it is ended (the conversation then resumes cold).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan KeptProcessIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How many turns one process serves before it is ended and its conversation resumes in a fresh one.</summary>
    [Range(1, 100_000)]
    public int MaxTurnsPerProcess { get; set; } = 100;

    /// <summary>How far back the pool looks for bursts of new chats when it decides how many spares to keep (<see cref="ClaudeModelOptions.MaxWarmSpares"/>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan SpareDemandWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The resident memory (MB) above which a process is ended after its turn rather than kept.</summary>
    [Range(1, 1_000_000)]
    public int MaxProcessMemoryMB { get; set; } = 1024;

    /// <summary>
    /// A kept conversation (one with an <c>id</c>) unused this long is removed: its mapping, its working directory and
    /// the session files the CLI keeps for it. Its next turn then starts a new session from the history the client sends.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan ConversationIdleLimit { get; set; } = TimeSpan.FromDays(30);

    /// <summary>The most kept conversations held; beyond it the ones unused the longest are removed as above.</summary>
    [Range(1, 10_000_000)]
    public int MaxConversations { get; set; } = 10_000;

    /// <summary>How often the two limits above are applied (also once at start).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A Redis (<c>host:port</c>, or StackExchange.Redis's configuration string; <c>CLAUDEPROXY_REDIS</c>) where workers
    /// keep what their conversations said, so that one whose worker is gone goes on at another; none by default.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>The system prompt when a request has none; empty keeps the CLI's own (a coding-agent prompt).</summary>
    public string? DefaultSystemPrompt { get; set; }

    /// <summary>Extra environment variables for every CLI process (e.g. <c>ANTHROPIC_BASE_URL</c>).</summary>
    public Dictionary<string, string> Environment { get; set; } = [];

    /// <summary>The Claude models the gateway offers, in the order they are listed.</summary>
    [MinLength(1)]
    [ValidateEnumeratedItems]
    public List<ClaudeModelOptions> Models { get; set; } = [];
}

/// <summary>The data annotations of <see cref="ClaudeBackendOptions"/>, each model's included, checked by generated code.</summary>
[OptionsValidator]
public sealed partial class ClaudeBackendOptionsValidator : IValidateOptions<ClaudeBackendOptions>;

/// <summary>One Claude model as clients see it.</summary>
public sealed class ClaudeModelOptions
{
    /// <summary>The name clients use; it contains a <c>:</c> because Open WebUI appends <c>:latest</c> to names without one.</summary>
    [Required]
    [RegularExpression(".*:.*", ErrorMessage = "A Claude model's Name must contain ':' (Open WebUI appends ':latest' to names without one).")]
    public string Name { get; set; } = "";

    /// <summary>The CLI's <c>--model</c> value: an alias (<c>sonnet</c>) or a full model id.</summary>
    [Required]
    [RegularExpression("^[^-].*", ErrorMessage = "A Claude model's CliModel is a --model value, not a flag.")]
    public string CliModel { get; set; } = "";

    /// <summary>Other names that reach this model (e.g. the original server's <c>claude-3-7-sonnet-latest</c>).</summary>
    public List<string> Aliases { get; set; } = [];

    /// <summary>
    /// How many processes of this model to keep started and waiting, so a new chat skips the CLI's cold start
    /// (≈0.6 s and 0.75 CPU-seconds). Each spare holds about 160 MB while it waits, and serves one new chat only.
    /// </summary>
    [Range(0, 64)]
    public int WarmSpares { get; set; }

    /// <summary>
    /// How many new-chat spares recent demand may raise <see cref="WarmSpares"/> to: when new chats of this model come in
    /// bursts (a chat, then its title and tags requests), the pool keeps as many spares as the largest burst of the last
    /// <see cref="ClaudeBackendOptions.SpareDemandWindow"/> used, up to this.
    /// </summary>
    [Range(0, 64)]
    public int MaxWarmSpares { get; set; } = 2;

    /// <summary>
    /// How many processes of this model to keep waiting for new conversations with an <c>id</c>. Each has a session and
    /// working directory of its own ready; the conversation that takes it keeps it for its next turns.
    /// </summary>
    [Range(0, 64)]
    public int WarmConversationSpares { get; set; }

    /// <summary>The context window reported by <c>/api/show</c>.</summary>
    [Range(1, int.MaxValue)]
    public int ContextLength { get; set; } = 200_000;

    /// <summary>
    /// A model of the Ollama behind the gateway (e.g. <c>llama3.2:3b</c>) that answers this model's requests while a
    /// budget they count against is spent, or the Claude login's usage limit is reached; none by default (such requests
    /// get a 429).
    /// </summary>
    public string? FallbackModel { get; set; }

    /// <summary>
    /// A cheaper model (a Claude model such as <c>claude-haiku:latest</c>, or an Ollama model) that answers the
    /// background tasks Open WebUI asks this model for after each answer: titles, tags, follow-ups; none by default.
    /// </summary>
    public string? TaskModel { get; set; }
}
