namespace Redundancy.Block.Engine.Replication;

// Writes of a connection that ended and have not reached the local disk yet. DRBD's receiver
// submits each write as it arrives and, when the connection ends, waits for them to complete
// (conn_disconnect → drbd_wait_ee_list_empty) before the node moves on; a peer write still waiting
// for an overlapping local request (a dual-primary conflict, handle_write_conflicts) fails instead.
// Ours holds writes behind an unfinished barrier, so they can reach the disk after the connection
// ended, while this node, if Primary, writes in a new generation. So: held writes that overlap a
// client request in flight here are dropped when the connection ends (never acknowledged, the
// peer's bitmap holds them), the others still go to the disk in order, and until they have, client
// writes and served reads to the same blocks wait for them (OverlapsPeerWrite, WriteInFlight) — or
// a write the old connection carried could land over one acknowledged in the new generation — and a
// new connection to that peer is refused (its resync and writes could be overtaken by them too).
public sealed partial class Replica
{
    /// <summary>Receivers of ended connections with writes held back or on their way to the disk.</summary>
    private readonly List<(int Peer, PeerWriteReceiver Receiver)> endedReceivers = [];

    /// <summary>All receivers whose writes may still land: the live connections' and the ended ones'.</summary>
    private IEnumerable<PeerWriteReceiver> UndrainedReceivers => receivers.Values.Concat(endedReceivers.Select(e => e.Receiver));

    /// <summary>Writes received from <paramref name="peer"/> that may still reach the local disk, on the live connection or on ended ones.</summary>
    public bool PeerWritesPending(int peer) => (receivers.TryGetValue(peer, out var live) && !live.Drained) || EndedConnectionDraining(peer);

    /// <summary>True while writes of an ended connection to <paramref name="peer"/> may still land: a new one waits.</summary>
    private bool EndedConnectionDraining(int peer) => endedReceivers.Any(e => e.Peer == peer);

    /// <summary>The connection to <paramref name="peer"/> ended: its receiver drains, without the writes that conflict.</summary>
    private void EndReceiver(int peer)
    {
        if (!receivers.Remove(peer, out var receiver))
        {
            return;
        }
        var dropped = receiver.DropHeldWrites((volume, data) => ClientRequestsOverlapping(volume, (long)data.OffsetBytes, data.LengthBytes).Any());
        foreach (var payload in dropped)
        {
            (payload as PooledBlock)?.Dispose();
        }
        if (dropped.Count > 0)
        {
            io.Log($"{Subject(peer)}: {dropped.Count} write(s) of the ended connection overlapped writes in flight here: not written");
        }
        if (!receiver.Drained)
        {
            endedReceivers.Add((peer, receiver));
        }
    }

    /// <summary>A write of an ended connection that will not be written: its receiver counts it done, so it can drain.</summary>
    private void AbandonPeerWrite(DeferredPeerWrite write)
    {
        Invariant.Assert(!IsCurrent(write.Peer, write.Receiver), "only a write of an ended connection is abandoned");
        (write.Action.Payload as PooledBlock)?.Dispose();
        write.Receiver.WriteDone(write.Action.Data.RequestId, succeeded: false);
        Carry(write.Peer, write.Receiver);
    }

    /// <summary>The connection to <paramref name="peer"/> ended: its writes waiting in <paramref name="waiting"/> are abandoned.</summary>
    private void AbandonPeerWrites(List<DeferredPeerWrite> waiting, int peer)
    {
        var ended = waiting.Where(w => w.Peer == peer).ToList();
        waiting.RemoveAll(w => w.Peer == peer);
        ended.ForEach(AbandonPeerWrite);
    }

    /// <summary>An ended connection's receiver has nothing left to write: client writes that waited for it go on.</summary>
    private void ForgetIfDrained(PeerWriteReceiver receiver)
    {
        if (receiver.Drained && endedReceivers.RemoveAll(e => e.Receiver == receiver) > 0 && waitingClientRequests.Count > 0)
        {
            StartUnblockedRequests();
        }
    }
}
