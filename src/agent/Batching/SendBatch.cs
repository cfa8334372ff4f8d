// A thread's send batch (the idea of TCP_CORK and MSG_MORE, for our own buffers). While a thread
// works through a batch of input — the frames of one socket read, the pipelined requests of one
// NBD receive — the small messages it produces (acks, Data frames of 4 KiB writes, NBD replies) are
// held by their senders and leave together when the batch closes: one send per socket per batch
// instead of one per message, and so one wake-up of the receiver instead of one per message, which
// on two CPUs is most of what a replicated 4 KiB write costs. Only the thread that opened a batch
// holds; a sender registers once per batch and is flushed in registration order, except that client
// replies go first: a write's reply must not wait behind what only follows it (the Barrier that
// closes the epoch once the writer is idle, sent as the last ack comes in; DRBD's sender sends it
// apart from the completion too), and the peer's wake-up must not come first. A thread must
// close its batch before it blocks (nothing else would send what it holds). What is held waits at
// most HoldLimitMicroseconds: a batch whose messages follow slow work (4 KiB writes into the page
// cache can take tens of microseconds each) sends what it holds and goes on, so a peer's acks and
// a burst's first Data frames do not wait for the whole batch's writes.
namespace Redundancy.Block.Agent.Batching;

/// <summary>Something that holds messages while its thread's batch is open and sends them when asked.</summary>
internal interface IBatchedSender
{
    /// <summary>Sends what this sender holds for the batch (called on the batch's thread).</summary>
    void FlushBatch();

    /// <summary>Holds replies to clients: flushed before the other senders of the batch.</summary>
    bool RepliesToClients => false;
}

internal static class SendBatch
{
    [ThreadStatic]
    private static int t_depth;

    [ThreadStatic]
    private static List<IBatchedSender>? t_held;

    /// <summary>When the first message of what is held now was held (Stopwatch ticks).</summary>
    [ThreadStatic]
    private static long t_heldSinceTicks;

    /// <summary>How long a held message may wait for the rest of its batch.</summary>
    public const int HoldLimitMicroseconds = 50;

    private static readonly long HoldLimitTicks = System.Diagnostics.Stopwatch.Frequency * HoldLimitMicroseconds / 1_000_000;

    /// <summary>Opens a batch on the calling thread (nests: the outermost <see cref="Close"/> flushes).</summary>
    public static void Open() => t_depth++;

    /// <summary>Closes the calling thread's batch; the outermost close sends everything held.</summary>
    public static void Close()
    {
        if (--t_depth == 0)
        {
            Flush();
        }
    }

    /// <summary>
    /// Registers <paramref name="sender"/> to be flushed when the calling thread's batch closes.
    /// False when no batch is open: the sender must send now.
    /// </summary>
    public static bool Hold(IBatchedSender sender)
    {
        if (t_depth == 0)
        {
            return false;
        }

        var held = t_held ??= [];
        if (held.Count == 0)
        {
            t_heldSinceTicks = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        if (!held.Contains(sender))
        {
            held.Add(sender);
        }

        return true;
    }

    /// <summary>Between two pieces of a batch's work: sends what is held if it has waited <see cref="HoldLimitMicroseconds"/>; the batch stays open.</summary>
    public static void FlushIfHeldTooLong()
    {
        if (t_held is { Count: > 0 } && System.Diagnostics.Stopwatch.GetTimestamp() - t_heldSinceTicks >= HoldLimitTicks)
        {
            Flush();
        }
    }

    /// <summary>Sends everything held (the outermost close calls it).</summary>
    private static void Flush()
    {
        var held = t_held;
        if (held is null)
        {
            return;
        }

        // A flush may hold more (an NBD reply flushed while a batch is open registers nothing new
        // today, but nothing forbids it): index loops, cleared at the end.
        for (int i = 0; i < held.Count; i++)
        {
            if (held[i].RepliesToClients)
            {
                held[i].FlushBatch();
            }
        }
        for (int i = 0; i < held.Count; i++)
        {
            if (!held[i].RepliesToClients)
            {
                held[i].FlushBatch();
            }
        }

        held.Clear();
    }
}
