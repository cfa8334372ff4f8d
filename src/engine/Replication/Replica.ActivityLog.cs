using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Replication;

// The activity log on the write path, as DRBD's drbd_al_begin_io: before a client write touches a
// cold 4 MiB extent, an AL transaction naming it is made durable (with the bitmap pages of the
// extent it evicts written first), so after a Primary crash only the extents in the on-disk AL need
// resync. A write waits while its extents' transaction is being written; its references are
// dropped when the client request completes.
public sealed partial class Replica
{
    private readonly HashSet<QueuedClientRequest> alHolding = new(ReferenceEqualityComparer.Instance);
    private readonly List<QueuedClientRequest> alAwaitingTransaction = [];
    private readonly List<QueuedClientRequest> alWaiting = [];

    /// <summary>
    /// True when <paramref name="request"/> may go on now; otherwise it is parked until the AL
    /// transaction it needs (or one it waits behind) is durable.
    /// </summary>
    private bool EnterActivityLog(QueuedClientRequest request)
    {
        var volume = volumes[request.Volume];
        if (volume.ActivityLog is not { } al || request.LengthBytes == 0 || !volume.HasLocalData || alHolding.Contains(request))
        {
            return true;
        }
        var begin = al.BeginWrite(request.OffsetBytes, request.LengthBytes);
        switch (begin.Outcome)
        {
            case AlBeginOutcome.Proceed:
                alHolding.Add(request);
                return true;
            case AlBeginOutcome.NeedsTransaction:
                alHolding.Add(request);
                alAwaitingTransaction.Add(request);
                io.WriteActivityLog(request.Volume, begin.Transaction!, begin.EvictedExtents, NewToken(new ActivityLogIo(request.Volume, begin.Transaction!)));
                return false;
            default:
                alWaiting.Add(request);
                return false;
        }
    }

    /// <summary>A client request completed: its extents may go cold again.</summary>
    private void LeaveActivityLog(QueuedClientRequest request)
    {
        if (alHolding.Remove(request))
        {
            volumes[request.Volume].ActivityLog!.EndWrite(request.OffsetBytes, request.LengthBytes);
            RetryActivityLogWaiters();
        }
    }

    /// <summary>
    /// The AL transaction is durable, or failed: the metadata disk is broken. As DRBD's
    /// drbd_al_begin_io_commit, the writes go on either way: the host's on-io-error policy deals
    /// with the disk (detach: the Primary goes on through its peer), and a request succeeds when
    /// the local disk or a peer has it.
    /// </summary>
    private void ActivityLogWritten(ActivityLogIo written, bool succeeded)
    {
        var al = volumes[written.Volume].ActivityLog!;
        al.CommitTransaction(written.Transaction);
        var ready = alAwaitingTransaction.Where(r => r.Volume == written.Volume).ToList();
        alAwaitingTransaction.RemoveAll(r => r.Volume == written.Volume);
        if (!succeeded)
        {
            io.Log($"{ResourceName}/{written.Volume}: meta-data I/O error writing the activity log");
        }
        foreach (var request in ready)
        {
            StartAfterActivityLog(request);
        }
        RetryActivityLogWaiters();
    }

    private void RetryActivityLogWaiters()
    {
        if (alWaiting.Count == 0)
        {
            return;
        }
        var waiting = alWaiting.ToList();
        alWaiting.Clear();
        foreach (var request in waiting)
        {
            StartAfterActivityLog(request);
        }
    }

    /// <summary>A client request parked by the activity log that <paramref name="request"/> overlaps.</summary>
    private bool OverlapsParked(QueuedClientRequest request) =>
        alWaiting.Any(request.Overlaps) || alAwaitingTransaction.Any(request.Overlaps);

    private sealed record ActivityLogIo(int Volume, ActivityLogTransaction Transaction) : PendingIo;
}
