using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// Dual-primary write conflicts (allow-two-primaries, protocol C), after DRBD's handle_write_conflicts.
// A write from the peer that overlaps a client request of this node still in flight is a conflict:
// - the request was sent to the peer and the peer has not answered it yet: the two writes are
//   concurrent (the peer issued its write before it had this node's; it would have waited for it
//   otherwise, see OverlapsPeerWrite). The node holding resolve-conflicts (the higher node-id)
//   decides: the peer's write is not written here. No write of this node covers it: RetryWrite at
//   once. Else Superseded, but only once a covering write is on the local disk; if every covering
//   write failed there (or had no local part), RetryWrite. (DRBD 8.4 answers Superseded at once: a
//   covering write that then failed would leave the superseded write, acknowledged, on no disk.)
//   Waiting for the local write cannot deadlock: it needs nothing from the peer. The other node
//   never decides: it waits.
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
    /// Concurrent writes from the peer that requests of this node cover, waiting for the local write
    /// of one of them (by request id; first case above). Still active in their receiver, so the
    /// epoch's barrier and overlapping client requests wait for the answer.
    /// </summary>
    private readonly List<(DeferredPeerWrite Write, HashSet<ulong> CoveredByPending)> supersededPeerWrites = [];

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
        var concurrent = overlapping.Where(r => writes.AwaitsAck(write.Peer, r.Key)).ToList();
        if (settings.Protocol.AllowTwoPrimaries && settings.ResolvesConflicts && concurrent.Count > 0)
        {
            var coveredBy = concurrent
                .Where(r => r.Value.OffsetBytes <= offsetBytes && offsetBytes + lengthBytes <= r.Value.OffsetBytes + r.Value.LengthBytes)
                .Select(r => r.Key).ToArray();
            if (coveredBy.Length == 0)
            {
                AnswerConcurrentPeerWrite(write, AckKind.RetryWrite);
                return true;
            }
            var states = coveredBy.Select(writes.LocalWriteOf).ToList();
            if (states.Contains(LocalWriteState.Succeeded))
            {
                AnswerConcurrentPeerWrite(write, AckKind.Superseded);
            }
            else if (states.Contains(LocalWriteState.Pending))
            {
                supersededPeerWrites.Add((write, coveredBy.Where((_, i) => states[i] == LocalWriteState.Pending).ToHashSet()));
            }
            else
            {
                // Every covering write failed here, or has no local part (this node was Diskless when
                // it started): only the peer could hold it, and whether it will is not known before
                // this answer (the peer writes it after its own).
                AnswerConcurrentPeerWrite(write, AckKind.RetryWrite);
            }
            return true;
        }
        conflictingPeerWrites.Add(write);
        return true;
    }

    /// <summary>
    /// The local write of client request <paramref name="requestId"/> finished: peer writes it
    /// covers are answered Superseded if it landed, RetryWrite once every covering write failed.
    /// </summary>
    private void CoveringWriteDone(ulong requestId, bool succeeded)
    {
        for (int i = 0; i < supersededPeerWrites.Count; i++)
        {
            var (write, pending) = supersededPeerWrites[i];
            if (!pending.Remove(requestId) || (!succeeded && pending.Count > 0))
            {
                continue;
            }
            supersededPeerWrites.RemoveAt(i--);
            AnswerConcurrentPeerWrite(write, succeeded ? AckKind.Superseded : AckKind.RetryWrite);
        }
    }

    /// <summary>The connection to <paramref name="peer"/> ended: its writes waiting for an answer are never answered.</summary>
    private void AbandonSupersededPeerWrites(int peer)
    {
        var ended = supersededPeerWrites.Where(p => p.Write.Peer == peer).Select(p => p.Write).ToList();
        supersededPeerWrites.RemoveAll(p => p.Write.Peer == peer);
        ended.ForEach(AbandonPeerWrite);
    }

    /// <summary>The resolving node's answer to a concurrent peer write, which is not written here.</summary>
    private void AnswerConcurrentPeerWrite(DeferredPeerWrite write, AckKind answer)
    {
        var data = write.Action.Data;
        io.Log($"{Subject(write.Peer)}/{write.Action.Volume}: concurrent writes to {data.OffsetBytes}+{data.LengthBytes}: the peer's write is answered {answer}");
        (write.Action.Payload as PooledBlock)?.Dispose();
        write.Receiver.Resolved(data.RequestId, answer);
        Carry(write.Peer, write.Receiver);
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
