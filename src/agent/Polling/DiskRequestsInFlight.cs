// How many asynchronous disk requests this process has in the kernel, over all its disks. A receive
// loop that is about to wait uses it to tell a quiet node from a busy one: with more than a couple
// of requests in flight, completions and peer frames arrive back to back, the CPUs have real work,
// and a busy-poll would mostly spin in recv and sched_yield between them (measured on a protocol C
// Secondary at 4K QD32: about four of each per write, a fifth of its CPU time per write). A quiet
// node (queue depth 1, the case the polls are for) keeps polling. The direct I/O queue counts; a disk
// written through the page cache has nothing in flight here, and its node polls as before.
namespace Redundancy.Block.Agent.Polling;

internal static class DiskRequestsInFlight
{
    /// <summary>With more requests in flight than this, the node is busy and a waiter does not poll.</summary>
    public const int MaxForPolling = 2;

    private static int s_count;

    /// <summary>Requests submitted and not yet completed, over every direct I/O queue of the process.</summary>
    public static int Count => Volatile.Read(ref s_count);

    /// <summary>True while few enough disk requests are in flight for a busy-poll to pay.</summary>
    public static bool QuietEnoughToPoll => Count <= MaxForPolling;

    public static void Started() => Interlocked.Increment(ref s_count);

    public static void Finished() => Interlocked.Decrement(ref s_count);
}
