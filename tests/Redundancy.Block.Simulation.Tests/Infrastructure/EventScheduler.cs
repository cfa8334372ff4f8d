namespace Redundancy.Block.Simulation.Infrastructure;

/// <summary>
/// Simulated time: a queue of actions ordered by (time, insertion order). Nothing happens
/// between events, so a run is a deterministic function of its seed. Time is in milliseconds.
/// </summary>
public sealed class EventScheduler
{
    private readonly PriorityQueue<Action, (long TimeMs, long Sequence)> queue = new();
    private long sequence;

    public long NowMs { get; private set; }

    public int Pending => queue.Count;

    /// <summary>When the next event is due, or null when none is queued.</summary>
    public long? NextEventMs => queue.TryPeek(out _, out var key) ? key.TimeMs : null;

    /// <summary>Runs <paramref name="action"/> <paramref name="delayMs"/> from now (0 = after what is already due now).</summary>
    public void After(long delayMs, Action action)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(delayMs);
        queue.Enqueue(action, (NowMs + delayMs, sequence++));
    }

    /// <summary>Runs the next event; false when none is left.</summary>
    public bool Step()
    {
        if (!queue.TryDequeue(out var action, out var key))
        {
            return false;
        }
        NowMs = key.TimeMs;
        action();
        return true;
    }

    /// <summary>Runs events until none is due before <paramref name="untilMs"/>; time then stands at it.</summary>
    public void RunUntil(long untilMs)
    {
        while (queue.TryPeek(out _, out var key) && key.TimeMs <= untilMs)
        {
            Step();
        }
        NowMs = Math.Max(NowMs, untilMs);
    }

    /// <summary>Runs until <paramref name="condition"/> holds or <paramref name="maxMs"/> of simulated time pass; returns whether it held.</summary>
    public bool RunUntil(Func<bool> condition, long maxMs)
    {
        long deadline = NowMs + maxMs;
        while (!condition())
        {
            if (!queue.TryPeek(out _, out var key) || key.TimeMs > deadline)
            {
                NowMs = Math.Max(NowMs, deadline);
                return condition();
            }
            Step();
        }
        return true;
    }
}
