// A reusable, allocation-free "wake up" for the reply sender: an IValueTaskSource the sender awaits
// when it has nothing to send and a completing request sets. Continuations run inline, so the thread
// that finishes a request usually writes its reply itself.
using System.Threading.Tasks.Sources;

namespace Redundancy.Block.Agent.Nbd;

internal sealed class NbdReplySignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core;

    /// <summary>Arms the signal; call before <see cref="WaitAsync"/>, never while one is pending.</summary>
    public void Reset() => _core.Reset();

    public ValueTask WaitAsync() => new(this, _core.Version);

    public void Set() => _core.SetResult(true);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(
        Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
