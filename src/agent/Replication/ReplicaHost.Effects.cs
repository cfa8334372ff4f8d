// Effects: what the replica asks for while the lock is held (local disk reads and writes, client
// completions) is queued and carried out right after the lock is released, by the thread that
// released it — no hop to the thread pool per write. A disk operation that completes at once
// (pwrite into the page cache) reports back under the lock on the same thread, which may queue
// more effects; the loop runs until none are left. Only one thread drains at a time, so effects
// run in the order they were queued. The thread that queued them takes them in the same hold of the
// lock, and a drainer hands one batch back and takes the next in one hold: the NBD, disk and peer
// threads all contend for the lock. Slow operations (fdatasync, AL transactions) still go to the
// thread pool (Background), so a flush never stalls the thread that happens to drain.
namespace Redundancy.Block.Agent.Replication;

public sealed partial class ReplicaHost
{
    private List<Action> effects = [];
    private List<Action>? spareEffects = [];
    private bool draining;

    /// <summary>Queues an effect; called with the lock held (from the replica's IReplicaIo calls).</summary>
    private void Effect(Action effect) => effects.Add(effect);

    /// <summary>Runs <paramref name="action"/> under the lock, then the effects it queued.</summary>
    private void Enter(Action action)
    {
        bool nested = gate.IsHeldByCurrentThread;
        List<Action>? batch;
        lock (gate)
        {
            action();
            batch = nested ? null : TakeEffects();
        }
        RunEffects(batch);
    }

    /// <summary>Runs <paramref name="action"/> under the lock and returns its value, then the effects it queued.</summary>
    private T Enter<T>(Func<T> action)
    {
        bool nested = gate.IsHeldByCurrentThread;
        T result;
        List<Action>? batch;
        lock (gate)
        {
            result = action();
            batch = nested ? null : TakeEffects();
        }
        RunEffects(batch);
        return result;
    }

    /// <summary>Carries out queued effects outside the lock (unless another thread is at it, or this one still holds the lock).</summary>
    private void RunEffects()
    {
        if (gate.IsHeldByCurrentThread)
        {
            return; // a nested Enter: the outermost one drains after releasing the lock
        }
        List<Action>? batch;
        lock (gate)
        {
            batch = TakeEffects();
        }
        RunEffects(batch);
    }

    /// <summary>
    /// With the lock held, by the thread about to release it: the effects queued, now this thread's to
    /// carry out, or null when there are none or another thread drains (it runs them after its own).
    /// The two lists are swapped, not copied: no allocation per drain.
    /// </summary>
    private List<Action>? TakeEffects()
    {
        if (draining || effects.Count == 0)
        {
            return null;
        }
        draining = true;
        var batch = effects;
        effects = spareEffects ?? [];
        spareEffects = null;
        return batch;
    }

    /// <summary>Runs a batch from <see cref="TakeEffects"/> outside the lock, then those queued meanwhile, until none are left.</summary>
    private void RunEffects(List<Action>? batch)
    {
        while (batch is not null)
        {
            bool ranAll = false;
            try
            {
                foreach (var effect in batch)
                {
                    effect();
                }
                ranAll = true;
            }
            finally
            {
                batch.Clear();
                lock (gate)
                {
                    spareEffects = batch;
                    draining = false;
                    // One pass through the lock both ends this batch and takes the next; after a failed
                    // effect the exception goes up and the next thread to leave the lock drains.
                    batch = ranAll ? TakeEffects() : null;
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
