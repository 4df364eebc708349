using ClaudeProxy.ClaudeBackend.StreamJson;

namespace ClaudeProxy.ClaudeBackend.Contract;

/// <summary>
/// Runs Claude turns: the seam between the dialects and whatever runs the model. The CLI runner
/// (<see cref="ClaudeCliBackend"/>) is the default; another implementation (a worker on another machine) takes its
/// place without a dialect noticing.
/// </summary>
public interface IClaudeBackend
{
    /// <summary>
    /// Starts a turn and returns once the model has started answering or the turn is over. A turn that never got to an
    /// answer (an unknown model, a full queue, bad credentials, a missing CLI) says so in
    /// <see cref="IClaudeTurnEvents.FailedBeforeAnswer"/>, so that the client can still get a real status code.
    /// </summary>
    Task<IClaudeTurnEvents> StartTurnAsync(ClaudeTurnRequest request, CancellationToken cancellationToken);
}

/// <summary>
/// The events of one turn, in order, a batch at a time as they arrive. They always end with exactly one outcome
/// (<see cref="TurnCompleted"/> or <see cref="TurnFailed"/>). Disposing them before the outcome ends the turn.
/// </summary>
public interface IClaudeTurnEvents : IAsyncDisposable
{
    /// <summary>The error when the turn ended before the model answered anything; its only event is then that failure.</summary>
    ClaudeBackendError? FailedBeforeAnswer { get; }

    /// <summary>Fills <paramref name="events"/> with the next events (waiting for at least one); false once the outcome was read.</summary>
    ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken);
}

/// <summary>Turn events that are known at once.</summary>
public static class ClaudeTurnEvents
{
    /// <summary>A turn that failed before the model answered.</summary>
    public static IClaudeTurnEvents Failed(ClaudeBackendError error) => new FailedTurn(error);

    private sealed class FailedTurn(ClaudeBackendError error) : IClaudeTurnEvents
    {
        private bool _read;

        public ClaudeBackendError? FailedBeforeAnswer => error;

        public ValueTask<bool> ReadAsync(List<ClaudeStreamEvent> events, CancellationToken cancellationToken)
        {
            events.Clear();
            if (_read)
            {
                return ValueTask.FromResult(false);
            }

            _read = true;
            events.Add(new TurnFailed(error));
            return ValueTask.FromResult(true);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
