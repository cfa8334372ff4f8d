// Brief busy-polling before a thread blocks. On a virtual machine a thread woken on an idle vCPU
// waits for the host to run that vCPU again: measured here at 100–250 µs per wake-up, more than a
// 4K write costs. A protocol C write wakes a chain of threads (the peer's receive, its disk
// completion, our receive of the ack), so polling briefly where the answer comes soon keeps those
// CPUs awake and takes most of the wake-ups off the write's path. Polling burns CPU, so it is
// bounded: a budget per wait, Thread.Yield between attempts (whatever else is runnable on the CPU
// goes first), and a waiter whose polls keep missing (an idle link, a slow disk) backs off
// exponentially, polling once in 2^n waits. None of it on a single CPU, where the spinner would only
// keep the awaited work from running.
using System.Diagnostics;

namespace Redundancy.Block.Agent.Polling;

/// <summary>One waiter's polling budget and back-off. Not thread-safe: one per receive loop or reaper.</summary>
internal sealed class BusyPoll(int budgetMicroseconds)
{
    /// <summary>Polling can pay off only when another CPU runs what is awaited.</summary>
    public static bool Worthwhile { get; } = Environment.ProcessorCount >= 2;

    private const int MaxMissStreak = 10;

    private readonly long budgetTicks = Stopwatch.Frequency * budgetMicroseconds / 1_000_000;
    private int skipPolls;
    private int missStreak;

    /// <summary>True when this wait should poll first, until <paramref name="deadlineTicks"/> (Stopwatch ticks); then call <see cref="Done"/>.</summary>
    public bool Begin(out long deadlineTicks)
    {
        deadlineTicks = 0;
        if (!Worthwhile || budgetTicks == 0)
        {
            return false;
        }
        if (skipPolls > 0)
        {
            skipPolls--;
            return false;
        }
        deadlineTicks = Stopwatch.GetTimestamp() + budgetTicks;
        return true;
    }

    /// <summary>Between two attempts: false once the budget is spent, else yields the CPU to whatever else is runnable on it.</summary>
    public static bool KeepPolling(long deadlineTicks)
    {
        if (Stopwatch.GetTimestamp() >= deadlineTicks)
        {
            return false;
        }
        Thread.Yield();
        return true;
    }

    /// <summary>How the poll that <see cref="Begin"/> allowed ended: a miss makes the next ones rarer.</summary>
    public void Done(bool answered)
    {
        if (answered)
        {
            missStreak = 0;
            return;
        }
        missStreak = Math.Min(missStreak + 1, MaxMissStreak);
        skipPolls = (1 << missStreak) - 1;
    }
}
