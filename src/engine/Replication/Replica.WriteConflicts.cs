using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// Dual-primary write conflicts (allow-two-primaries, protocol C), after DRBD's handle_write_conflicts.
// A write from the peer that overlaps a client request of this node still in flight is a conflict:
// - the request was sent to the peer and the peer has not answered it yet: the two writes are
//   concurrent (the peer issued its write before it had this node's; it would have waited for it
//   otherwise, see OverlapsPeerWrite). The node holding resolve-conflicts (the higher node-id)
//   decides at once: the peer's write is not written here and is answered Superseded when this
//   node's write covers it, else RetryWrite. The other node never decides: it waits.
// - otherwise (the peer's write came after this node's, or this node does not resolve conflicts):
//   the peer's write waits until the request is completed (answered by the resolving peer) or
//   postponed (RetryWrite), and its local write is done — so it lands after it on this disk too.
// A RetryWrite request is issued again (new id) once the winning peer write is on the local disk:
// it goes first among the client requests waiting, behind that peer write (OverlapsPeerWrite).
// Why the replicas converge: each connection is one ordered stream, so an ack is never overtaken by
// a write issued after it (DRBD needs its peer sequence numbers, wait_for_and_update_peer_seq, only
// because acks and data travel on two sockets). For two concurrent writes R (resolving node) and
// D (other node): the resolving node keeps R and never writes D; the other node writes R after D
// (it waits for D's answer and local write). Superseded: R covers D, both end with R. RetryWrite:
// D is written again after R on the other node and sent again; it reaches the resolving node after
// the WriteAck for R, so it is no longer concurrent and is written after R there: both end with D.
// Unlike DRBD, a request the peer already acknowledged (its local write still pending) is not
// resolved against: the peer's write came after it and simply waits for the local write. Client
// requests on either node wait for overlapping peer writes received and not yet written (Admit,
// StartAfterActivityLog), so a write issued after the peer's is never taken for a concurrent one.
public sealed partial class Replica
{
    /// <summary>Writes from the peer waiting for an overlapping client request of this node (second case above).</summary>
    private readonly List<DeferredPeerWrite> conflictingPeerWrites = [];

    /// <summary>
    /// True when <paramref name="write"/> must not be written now: answered instead (the resolving
    /// node's concurrent write wins) or queued until the overlapping client request finishes.
    /// </summary>
    private bool HeldByWriteConflict(DeferredPeerWrite write)
    {
        var data = write.Action.Data;
        long offsetBytes = (long)data.OffsetBytes;
        long lengthBytes = data.LengthBytes;
        if (lengthBytes == 0 || !volumes[write.Action.Volume].HasLocalData)
        {
            // Without a disk nothing is written here, so nothing conflicts: the write fails here and
            // the writer's own disk decides it (DRBD sends no writes to a diskless peer at all,
            // drbd_should_do_remote). Superseding it would acknowledge it on the strength of this
            // node's own write, which only the writer's disk would hold.
            return false;
        }
        var overlapping = ClientRequestsOverlapping(write.Action.Volume, offsetBytes, lengthBytes).ToList();
        if (overlapping.Count == 0)
        {
            return false;
        }
        var settings = links[write.Peer].Settings;
        var concurrent = overlapping.Where(r => writes.AwaitsAck(write.Peer, r.Key)).Select(r => r.Value).ToList();
        if (settings.Protocol.AllowTwoPrimaries && settings.ResolvesConflicts && concurrent.Count > 0)
        {
            bool superseded = concurrent.Any(r => r.OffsetBytes <= offsetBytes && offsetBytes + lengthBytes <= r.OffsetBytes + r.LengthBytes);
            var answer = superseded ? AckKind.Superseded : AckKind.RetryWrite;
            io.Log($"{Subject(write.Peer)}/{write.Action.Volume}: concurrent writes to {offsetBytes}+{lengthBytes}: the peer's write is answered {answer}");
            (write.Action.Payload as PooledBlock)?.Dispose();
            write.Receiver.Resolved(data.RequestId, answer);
            Carry(write.Peer, write.Receiver);
            return true;
        }
        conflictingPeerWrites.Add(write);
        return true;
    }

    /// <summary>Client requests finished or were postponed: peer writes that waited for them go on (or wait again).</summary>
    private void RetryConflictingPeerWrites()
    {
        if (conflictingPeerWrites.Count == 0)
        {
            return;
        }
        var waiting = conflictingPeerWrites.ToList();
        conflictingPeerWrites.Clear();
        foreach (var write in waiting)
        {
            if (!IsCurrent(write.Peer, write.Receiver))
            {
                AbandonPeerWrite(write); // its connection ended: never written late
                continue;
            }
            SubmitPeerWrite(write);
        }
    }

    /// <summary>
    /// A request the activity log held is let go: a write from the peer to the same blocks that
    /// arrived meanwhile goes first, as it does for a new request (Admit), or the two would be on
    /// the local disk together and land in either order, while the peer keeps its own.
    /// </summary>
    private void StartAfterActivityLog(QueuedClientRequest request)
    {
        if (OverlapsPeerWrite(request))
        {
            waitingClientRequests.Insert(0, request); // admitted before any request waiting now
            return;
        }
        Start(request);
    }

    /// <summary>
    /// The resolving peer answered RetryWrite and the local write is done: the request is issued
    /// again, ahead of the client requests that arrived after it, and behind the peer's write.
    /// </summary>
    private void RestartPostponed(IReadOnlyList<QueuedClientRequest> postponed)
    {
        for (int i = 0; i < postponed.Count; i++)
        {
            io.Log($"{ResourceName}/{postponed[i].Volume}: write to {postponed[i].OffsetBytes}+{postponed[i].LengthBytes} conflicted with the peer's: issued again after it");
            waitingClientRequests.Insert(i, postponed[i]);
        }
    }
}
