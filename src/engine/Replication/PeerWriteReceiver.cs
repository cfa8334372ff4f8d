using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

/// <summary>What the host must do for the writes a peer sends.</summary>
public enum ReceiverActionKind
{
    /// <summary>Write (or trim/zero) <see cref="ReceiverAction.Data"/> to the local disk, then call <see cref="PeerWriteReceiver.WriteDone"/>.</summary>
    SubmitWrite,
    /// <summary>Send an ack for <see cref="ReceiverAction.Data"/> (<see cref="ReceiverAction.Ack"/> says which).</summary>
    SendAck,
    /// <summary>Flush the local disk (fdatasync), then call <see cref="PeerWriteReceiver.FlushDone"/>.</summary>
    Flush,
    /// <summary>Send BarrierAck(<see cref="ReceiverAction.Epoch"/>, <see cref="ReceiverAction.SetSize"/>).</summary>
    SendBarrierAck,
}

/// <summary>One step for the host; <see cref="Payload"/> is the host's own handle on the write's bytes.</summary>
public readonly record struct ReceiverAction(
    ReceiverActionKind Kind,
    int Volume,
    DataMessage Data,
    object? Payload,
    AckKind Ack,
    uint Epoch,
    uint SetSize);

/// <summary>
/// The receiving side of replication on a Secondary, after DRBD's receiver with write-ordering
/// `flush`: writes of one epoch are submitted as they arrive and may complete in any order; a
/// Barrier waits until every write before it is on the disk, flushes, and only then acknowledges
/// and lets later writes through — so writes the Primary issued after one completed never land
/// before it. Acks follow the protocol flags the Primary set on each write (RecvAck on receipt
/// for B, WriteAck after the local write for C, NegAck when it failed). A FLUSH from the Primary
/// is acknowledged only after the local flush. A BarrierAck tells the Primary the epoch is on
/// stable storage (it then forgets the writes); when the barrier's flush fails, the epoch's writes
/// may have been only in the cache of a failing (or already detached) disk, so each is answered
/// with a NegAck first, which the Primary records out of sync. (DRBD sends the BarrierAck anyway
/// and relies on the Secondary's own activity log, applied at its next attach; this Secondary
/// keeps no activity log for peer writes, so the Primary's bitmap must hold them.) Pure; the host
/// carries out the actions in order.
/// </summary>
/// <param name="flushOnBarrier">
/// `disk-flushes` (DRBD's default yes): the barrier flushes the disk. With `disk-flushes no` (a
/// battery-backed cache) the order falls back to DRBD's `drain`: the barrier waits for the epoch's
/// writes to complete, without a flush.
/// </param>
public sealed class PeerWriteReceiver(bool flushOnBarrier = true)
{
    private readonly List<ReceiverAction> actions = [];
    private readonly Queue<Pending> held = new();
    private readonly Dictionary<ulong, (int Volume, DataMessage Data)> active = [];
    /// <summary>Writes of the epoch the next BarrierAck closes that reached the disk (its cache, until the barrier's flush).</summary>
    private readonly List<(int Volume, DataMessage Data)> epochWritten = [];
    private List<FlushWaiter> flushCovers = [];
    private List<FlushWaiter> flushNext = [];
    private uint? barrierWaiting;
    private bool barrierFlushRequested;
    private uint epochSize;
    private bool flushing;

    /// <summary>Writes submitted and not yet done.</summary>
    public int ActiveWrites => active.Count;

    /// <summary>Frames held back behind an unfinished barrier.</summary>
    public int HeldFrames => held.Count;

    /// <summary>No write is held back or on its way to the disk: nothing of this connection can still land.</summary>
    public bool Drained => held.Count == 0 && active.Count == 0;

    /// <summary>
    /// True while a write overlapping the range is held back behind a barrier or not yet on the local
    /// disk: a read served for the peer (resync or remote read) must wait for it, or it could return
    /// older data than the peer wrote.
    /// </summary>
    public bool WriteInFlight(int volume, long offsetBytes, long lengthBytes)
    {
        bool Overlaps(int v, in DataMessage d) =>
            v == volume && d.LengthBytes > 0 && lengthBytes > 0 && (long)d.OffsetBytes < offsetBytes + lengthBytes && offsetBytes < (long)d.OffsetBytes + d.LengthBytes;
        return active.Values.Any(w => Overlaps(w.Volume, w.Data)) || held.Any(p => p.Barrier is null && Overlaps(p.Volume, p.Data));
    }

    public IReadOnlyList<ReceiverAction> TakeActions()
    {
        var taken = actions.ToList();
        actions.Clear();
        return taken;
    }

    /// <summary>
    /// The connection ended: held-back writes that <paramref name="conflicts"/> names are never
    /// written (their payloads are returned to be released). The rest still go to the disk in order.
    /// </summary>
    public IReadOnlyList<object?> DropHeldWrites(Func<int, DataMessage, bool> conflicts)
    {
        var dropped = new List<object?>();
        int count = held.Count;
        for (int i = 0; i < count; i++)
        {
            var next = held.Dequeue();
            if (next.Barrier is null && conflicts(next.Volume, next.Data))
            {
                dropped.Add(next.Payload);
                continue;
            }
            held.Enqueue(next);
        }
        return dropped;
    }

    /// <summary>A Data frame; <paramref name="payload"/> is the host's buffer (null for trim/zeroes/flush).</summary>
    public void Data(int volume, in DataMessage data, object? payload)
    {
        if (barrierWaiting is not null)
        {
            held.Enqueue(new Pending(volume, data, payload, null));
            return;
        }
        Submit(volume, data, payload);
    }

    /// <summary>A Barrier closing <paramref name="epoch"/>.</summary>
    public void Barrier(uint epoch)
    {
        if (barrierWaiting is not null)
        {
            held.Enqueue(new Pending(0, default, null, epoch));
            return;
        }
        barrierWaiting = epoch;
        barrierFlushRequested = false;
        MaybeFlushForBarrier();
    }

    /// <summary>The local write of <paramref name="requestId"/> finished.</summary>
    public void WriteDone(ulong requestId, bool succeeded)
    {
        Invariant.Assert(active.Remove(requestId, out var write), $"write {requestId} completed once, after it was submitted");
        if (!succeeded)
        {
            actions.Add(Ack(write.Volume, write.Data, AckKind.NegAck));
        }
        else
        {
            epochWritten.Add(write);
            if (write.Data.Flags.HasFlag(DataFlags.SendWriteAck))
            {
                actions.Add(Ack(write.Volume, write.Data, AckKind.WriteAck));
            }
        }
        MaybeFlushForBarrier();
    }

    /// <summary>
    /// Dual-primary: the write of <paramref name="requestId"/> is not written here, because this
    /// node's own concurrent write to the same blocks wins (DRBD's handle_write_conflicts on the
    /// resolving side): it is answered with <paramref name="answer"/> (Superseded or RetryWrite)
    /// instead of a WriteAck.
    /// </summary>
    public void Resolved(ulong requestId, AckKind answer)
    {
        Invariant.Assert(answer is AckKind.Superseded or AckKind.RetryWrite, $"a conflict is answered Superseded or RetryWrite, not {answer}");
        Invariant.Assert(active.Remove(requestId, out var write), $"write {requestId} resolved once, after it was submitted");
        actions.Add(Ack(write.Volume, write.Data, answer));
        MaybeFlushForBarrier();
    }

    /// <summary>
    /// The local flush finished: what it covers is acknowledged (a barrier then lets held frames
    /// through); what arrived while it ran needs the next flush.
    /// </summary>
    public void FlushDone(bool succeeded)
    {
        Invariant.Assert(flushing, "a flush completes only after it was asked for");
        flushing = false;
        var covered = flushCovers;
        flushCovers = [];
        if (flushNext.Count > 0)
        {
            (flushCovers, flushNext) = (flushNext, []);
            StartFlush();
        }
        foreach (var waiter in covered)
        {
            if (waiter.BarrierEpoch is { } epoch)
            {
                if (!succeeded)
                {
                    // The epoch's writes may be lost with the disk's cache: the Primary must not take
                    // the BarrierAck for their durability. A NegAck makes it mark them out of sync;
                    // the epoch still closes, so the writes behind it go on (and fail or not).
                    actions.AddRange(epochWritten.Select(w => Ack(w.Volume, w.Data, AckKind.NegAck)));
                }
                CloseEpoch(epoch);
            }
            else
            {
                actions.Add(Ack(waiter.Volume, waiter.Data, succeeded ? AckKind.WriteAck : AckKind.NegAck));
            }
        }
    }

    private void Submit(int volume, in DataMessage data, object? payload)
    {
        epochSize++;
        if (data.Flags.HasFlag(DataFlags.SendReceiveAck))
        {
            actions.Add(Ack(volume, data, AckKind.RecvAck));
        }
        if (data.Flags.HasFlag(DataFlags.Flush) && data.LengthBytes == 0)
        {
            // A pure flush covers what the Primary saw completed, i.e. what was written here.
            RequestFlush(new FlushWaiter(volume, data, null));
            return;
        }
        Invariant.Assert(!active.ContainsKey(data.RequestId), $"request id {data.RequestId} reused while active");
        active[data.RequestId] = (volume, data);
        actions.Add(new ReceiverAction(ReceiverActionKind.SubmitWrite, volume, data, payload, default, 0, 0));
    }

    private void MaybeFlushForBarrier()
    {
        if (barrierWaiting is { } epoch && active.Count == 0 && !barrierFlushRequested)
        {
            barrierFlushRequested = true;
            if (!flushOnBarrier)
            {
                CloseEpoch(epoch); // drain: the epoch's writes are done, nothing to flush
                return;
            }
            RequestFlush(new FlushWaiter(0, default, epoch));
        }
    }

    /// <summary>Joins the next flush that starts after now (an already running one may not cover it).</summary>
    private void RequestFlush(FlushWaiter waiter)
    {
        if (flushing)
        {
            flushNext.Add(waiter);
            return;
        }
        flushCovers.Add(waiter);
        StartFlush();
    }

    private void StartFlush()
    {
        flushing = true;
        actions.Add(new ReceiverAction(ReceiverActionKind.Flush, 0, default, null, default, 0, 0));
    }

    /// <summary>The epoch is on the disk (flushed, or drained): acknowledge it and let the frames behind it through.</summary>
    private void CloseEpoch(uint epoch)
    {
        actions.Add(new ReceiverAction(ReceiverActionKind.SendBarrierAck, 0, default, null, default, epoch, epochSize));
        barrierWaiting = null;
        epochSize = 0;
        epochWritten.Clear();
        Release();
    }

    /// <summary>Lets held frames through, up to the next barrier that must wait again.</summary>
    private void Release()
    {
        while (held.Count > 0 && barrierWaiting is null)
        {
            var next = held.Dequeue();
            if (next.Barrier is { } epoch)
            {
                Barrier(epoch);
            }
            else
            {
                Submit(next.Volume, next.Data, next.Payload);
            }
        }
    }

    private static ReceiverAction Ack(int volume, in DataMessage data, AckKind ack) =>
        new(ReceiverActionKind.SendAck, volume, data, null, ack, 0, 0);

    private readonly record struct Pending(int Volume, DataMessage Data, object? Payload, uint? Barrier);

    private readonly record struct FlushWaiter(int Volume, DataMessage Data, uint? BarrierEpoch);
}
