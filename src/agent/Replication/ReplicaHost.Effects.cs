// Effects: what the replica asks for while the lock is held (local disk reads and writes, client
// completions) is queued and carried out right after the lock is released, by the thread that
// released it — no hop to the thread pool per write. A disk operation that completes at once
// (pwrite into the page cache) reports back under the lock on the same thread, which may queue
// more effects; the loop runs until none are left. Only one thread drains at a time, so effects
// run in the order they were queued. Slow operations (fdatasync, AL transactions) still go to the
// thread pool (Background), so a flush never stalls the thread that happens to drain.
namespace Redundancy.Block.Agent.Replication;

public sealed partial class ReplicaHost
{
    private readonly List<Action> effects = [];
    private bool draining;

    /// <summary>Queues an effect; called with the lock held (from the replica's IReplicaIo calls).</summary>
    private void Effect(Action effect) => effects.Add(effect);

    /// <summary>Runs <paramref name="action"/> under the lock, then the effects it queued.</summary>
    private void Enter(Action action)
    {
        lock (gate)
        {
            action();
        }
        RunEffects();
    }

    /// <summary>Runs <paramref name="action"/> under the lock and returns its value, then the effects it queued.</summary>
    private T Enter<T>(Func<T> action)
    {
        T result;
        lock (gate)
        {
            result = action();
        }
        RunEffects();
        return result;
    }

    /// <summary>Carries out queued effects outside the lock until none are left (unless another thread is at it, or this one still holds the lock).</summary>
    private void RunEffects()
    {
        if (gate.IsHeldByCurrentThread)
        {
            return; // a nested Enter: the outermost one drains after releasing the lock
        }
        while (true)
        {
            Action[] batch;
            lock (gate)
            {
                if (draining || effects.Count == 0)
                {
                    return;
                }
                draining = true;
                batch = [.. effects];
                effects.Clear();
            }
            try
            {
                foreach (var effect in batch)
                {
                    effect();
                }
            }
            finally
            {
                lock (gate)
                {
                    draining = false;
                }
            }
        }
    }

    /// <summary>A local disk operation: reported under the lock at once when it completed synchronously, else when it does.</summary>
    private void LocalOperation(long token, Func<ValueTask> start)
    {
        ValueTask pending;
        try
        {
            pending = start();
        }
        catch (IOException e)
        {
            LogDiskError(logger, e.Message);
            lock (gate)
            {
                Replica.LocalDone(token, false);
            }
            return;
        }
        if (pending.IsCompletedSuccessfully)
        {
            // Consumed even so: a pooled source (the direct I/O queue's) takes its slot back in GetResult.
            pending.GetAwaiter().GetResult();
            lock (gate)
            {
                Replica.LocalDone(token, true);
            }
            return;
        }
        _ = FinishLocalOperationAsync(token, pending);
    }

    private async Task FinishLocalOperationAsync(long token, ValueTask pending)
    {
        bool ok = true;
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (IOException e)
        {
            LogDiskError(logger, e.Message);
            ok = false;
        }
        Enter(() => Replica.LocalDone(token, ok));
    }
}
