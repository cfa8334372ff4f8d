using System.Buffers;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// on-congestion, as DRBD's maybe_pull_ahead (drbd_req.c) and its way back through a resync. With
// protocol A a Primary whose link to a peer cannot keep up — at least congestion-fill bytes of write
// data in flight to it (sent and not yet released by a BarrierAck: DRBD's ap_in_flight, kept by the
// WriteTracker) or at least congestion-extents activity-log extents in use — either drops the
// connection (disconnect: StandAlone, as DRBD; the transfer log goes into the bitmap) or goes Ahead
// (pull-ahead): it closes the epoch so what the peer has can be BarrierAcked, starts a new data
// generation (the old one becomes the peer's bitmap UUID), and from then on sends the peer no writes
// but a P_OUT_OF_SYNC for each, marking them in its own bitmap. The peer, told by P_STATE, goes
// Behind: it marks those ranges in its bitmap and its disk is Outdated (DRBD allows at most Outdated
// in Behind). Once everything sent before is BarrierAcked and a second has passed (DRBD's
// start_resync_timer) the Primary starts a bitmap resync on the live connection: Ahead → WFBitMapS,
// announced by P_STATE, which turns the peer's Behind into WFBitMapT; both exchange bitmaps and
// go on as after a handshake (SyncSource/SyncTarget), ending Established with the peer UpToDate.
// Only a peer whose every volume is Established (peer disk UpToDate, local disk UpToDate) is
// pulled ahead of; DRBD also does so during a resync, which this engine does not.
public sealed partial class Replica
{
    /// <summary>DRBD's start_resync_timer: the resync after Ahead starts this long after the link drained.</summary>
    public const long AheadToSyncSourceDelayMs = 1000;

    /// <summary>Peers pulled ahead of whose transfer log is empty, and since when.</summary>
    private readonly Dictionary<int, long> aheadDrainedSinceMs = [];

    /// <summary>After a client write went out: a peer whose link is congested is pulled ahead of, or dropped.</summary>
    private void MaybePullAhead()
    {
        if (Protocol != ReplicationProtocol.A)
        {
            return; // the configuration refuses any other policy than block for protocols B and C
        }
        foreach (var (peer, link) in links) // not `connected`: dropping a peer below changes it
        {
            var settings = link.Settings;
            if (settings.OnCongestion == CongestionPolicy.Block || !connected.Contains(peer) || writes.IsPulledAhead(peer) || !ReplicatingTo(peer)
                || Congestion(peer, settings) is not { } congestion)
            {
                continue;
            }
            if (settings.OnCongestion == CongestionPolicy.Disconnect)
            {
                link.Disconnect($"on-congestion disconnect: {congestion}");
                Drain(peer);
            }
            else
            {
                io.Log($"{Subject(peer)}: {congestion}");
                PullAhead(peer);
            }
        }
    }

    /// <summary>DRBD's drbd_should_do_remote for every volume, with good local data (get_ldev_if_state(D_UP_TO_DATE)).</summary>
    private bool ReplicatingTo(int peer) => Role == Role.Primary && writes.HasPeer(peer) && volumes.Values.All(v =>
        v.Disk == DiskState.UpToDate && ReplicationOf(peer, v.Number) == ReplicationState.Established
        && links[peer].PeerDisks.GetValueOrDefault(v.Number) == DiskState.UpToDate);

    /// <summary>Why the link to the peer counts as congested (DRBD's log line, in sectors), or null.</summary>
    private string? Congestion(int peer, PeerLinkSettings settings)
    {
        long inFlightBytes = writes.InTransferLogBytes(peer);
        if (settings.CongestionFillBytes > 0 && inFlightBytes >= settings.CongestionFillBytes)
        {
            return $"Congestion-fill threshold reached ({inFlightBytes / 512} >= {settings.CongestionFillBytes / 512})";
        }
        foreach (var volume in volumes.Values)
        {
            if (volume.ActivityLog is { } al && al.BusySlots >= settings.CongestionExtents)
            {
                return $"Congestion-extents threshold reached ({al.BusySlots} >= {settings.CongestionExtents})";
            }
        }
        return null;
    }

    /// <summary>Ahead of the peer: no more writes to it, a new data generation, and the peer told (it goes Behind).</summary>
    private void PullAhead(int peer)
    {
        writes.PullAhead(peer);
        if (writes.CloseEpoch() is { } closed)
        {
            // What the peer already has must be BarrierAcked for the link to drain: no later request
            // would carry this barrier to it.
            byte[] barrier = Frame(0, new BarrierMessage(closed));
            foreach (int p in writes.Peers)
            {
                io.Send(p, barrier);
            }
        }
        foreach (var volume in volumes.Values)
        {
            SetReplication(peer, volume.Number, ReplicationState.Ahead);
        }
        // DRBD's create_new_uuid on entering Ahead: writes go on without the peer, so a reconnect
        // must find the peer behind (its current UUID is now our bitmap UUID for it).
        foreach (var volume in volumes.Values.Where(v => v.HasLocalData))
        {
            StartNewGeneration(volume);
        }
        foreach (int p in connected.ToList())
        {
            foreach (var volume in volumes.Values)
            {
                links[p].AnnounceUuids(volume.Number);
            }
            links[p].AnnounceState();
            Drain(p);
        }
    }

    /// <summary>A write the Ahead peer does not get: it learns the range (P_OUT_OF_SYNC); our bitmap already has it.</summary>
    private void TellPulledAhead(int peer, int volume, long offsetBytes, long lengthBytes)
    {
        if (connected.Contains(peer) && writes.IsPulledAhead(peer))
        {
            io.Send(peer, Frame((ushort)volume, new OutOfSyncMessage((ulong)offsetBytes, (uint)lengthBytes)));
        }
    }

    /// <summary>P_OUT_OF_SYNC from a Primary that is Ahead of us. Untrusted: a range outside the volume drops the connection.</summary>
    private void ReceiveOutOfSync(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!FramePayload.TryRead(payload, out OutOfSyncMessage outOfSync, out string? error) || !volumes.TryGetValue(header.Volume, out var volume)
            || outOfSync.OffsetBytes + outOfSync.LengthBytes > (ulong)volume.UsableSizeBytes)
        {
            ProtocolError(peer, error ?? $"OutOfSync for volume {header.Volume} outside the agreed size");
            return;
        }
        var state = ReplicationOf(peer, volume.Number);
        if (state is not (ReplicationState.Behind or ReplicationState.WFBitMapT or ReplicationState.WFSyncUUID))
        {
            // DRBD marks the range anyway: more to resync is never wrong.
            io.Log($"{Subject(peer)}/{volume.Number}: OutOfSync while {state}, expected Behind");
        }
        volume.Bitmaps.MarkOutOfSync(volume.SlotOfPeer[peer], (long)outOfSync.OffsetBytes, outOfSync.LengthBytes);
    }

    /// <summary>
    /// The peer's P_STATE on an established connection (the link has validated it): Ahead makes us
    /// Behind; WFBitMapS while we are Behind starts the resync after Ahead/Behind, as target.
    /// </summary>
    private void OnPeerReplicationState(int peer, int volumeNumber, in ReadOnlySequence<byte> payload)
    {
        if (!FramePayload.TryRead(payload, out StateMessage state, out _) || !volumes.TryGetValue(volumeNumber, out var volume))
        {
            return;
        }
        var ours = ReplicationOf(peer, volumeNumber);
        if (state.Replication == ReplicationState.Ahead && ours == ReplicationState.Established)
        {
            SetReplication(peer, volumeNumber, ReplicationState.Behind);
            if (volume.Disk is DiskState.UpToDate or DiskState.Consistent)
            {
                // The Primary writes what this disk no longer gets: at most Outdated while Behind.
                volume.Flags &= ~MetadataFlags.WasUpToDate;
                SetDisk(volume, DiskState.Outdated);
            }
        }
        else if (state.Replication == ReplicationState.WFBitMapS && ours == ReplicationState.Behind)
        {
            io.Log($"{Subject(peer)}/{volumeNumber}: resync after Behind");
            StartSync(peer, volume, ReplicationState.WFBitMapT, fullSync: false, ConnectedPeerUuids(peer, volumeNumber));
        }
    }

    /// <summary>Every tick: a peer we are Ahead of whose link has drained for a second gets its resync.</summary>
    private void CongestionTurns(long nowMs)
    {
        foreach (int peer in connected.Where(writes.IsPulledAhead).ToList())
        {
            if (writes.InTransferLog(peer) > 0 || writes.InFlight(peer) > 0)
            {
                aheadDrainedSinceMs.Remove(peer);
            }
            else if (!aheadDrainedSinceMs.TryGetValue(peer, out long sinceMs))
            {
                aheadDrainedSinceMs[peer] = nowMs;
            }
            else if (nowMs - sinceMs >= AheadToSyncSourceDelayMs)
            {
                ResyncAfterAhead(peer);
            }
        }
    }

    /// <summary>Ahead → WFBitMapS: writes go to the peer again, it learns our UUIDs and state, then the bitmaps are exchanged.</summary>
    private void ResyncAfterAhead(int peer)
    {
        aheadDrainedSinceMs.Remove(peer);
        var ahead = volumes.Values.Where(v => ReplicationOf(peer, v.Number) == ReplicationState.Ahead).ToList();
        if (ahead.Any(v => v.Disk != DiskState.UpToDate))
        {
            // Lost our good data while Ahead (a forced detach): only a new handshake can sort this out.
            links[peer].Fail("the disk is no longer UpToDate, cannot resync the peer after Ahead");
            Drain(peer);
            return;
        }
        writes.Resume(peer);
        foreach (var volume in ahead)
        {
            // The target ends the resync with the source's UUIDs as they are now: send them first.
            links[peer].AnnounceUuids(volume.Number);
            SetReplication(peer, volume.Number, ReplicationState.WFBitMapS);
        }
        links[peer].AnnounceState();
        Drain(peer); // the UUIDs and the state go out before the bitmap StartSync sends directly
        foreach (var volume in ahead.Where(_ => connected.Contains(peer)))
        {
            StartSync(peer, volume, ReplicationState.WFBitMapS, fullSync: false, ConnectedPeerUuids(peer, volume.Number));
        }
    }

    /// <summary>The connection is gone: nothing to resync after Ahead on it (the handshake decides next time).</summary>
    private void ForgetCongestion(int peer) => aheadDrainedSinceMs.Remove(peer);
}
