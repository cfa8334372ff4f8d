using System.Buffers;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// Resync, as DRBD does it after the handshake decided a direction: both sides exchange their
// bitmaps for each other and merge them (WFBitMapS/T); the source makes a new sync UUID and sends
// it (WFSyncUUID on the target); the target pulls the out-of-sync blocks in disk order
// (RsDataRequest → RsDataReply → RsWriteAck), staying Inconsistent until the last one; then both
// move their generation identifiers on and the target is UpToDate. An interrupted resync leaves
// the cleared bits cleared, so the next connection resumes instead of restarting.
public sealed partial class Replica
{
    /// <summary>Resync requests the target keeps in flight, in bytes.</summary>
    public const long ResyncWindowBytes = 4L << 20;

    private readonly Dictionary<(int Peer, int Volume), SyncState> syncs = [];

    /// <summary>Resync progress towards or from a peer, or null when none runs.</summary>
    public ResyncProgress? ResyncProgressOf(int peerNodeId, int volume, long nowMs) =>
        syncs.TryGetValue((peerNodeId, volume), out var sync) && sync.Planner is { } planner ? planner.Progress(nowMs) : null;

    /// <summary>A local read started through <see cref="IReplicaIo.ReadLocal"/> finished (a client's, a peer's, or a resync's).</summary>
    public void LocalReadDone(long token, bool succeeded, ReadOnlyMemory<byte> data)
    {
        Invariant.Assert(pendingIo.Remove(token, out var pending), $"read {token} completes once");
        switch (pending)
        {
            case ClientReadIo client:
                ClientReadDone(client, succeeded, data);
                break;
            case PeerReadIo remote:
                PeerReadDone(remote, succeeded, data);
                break;
            case ResyncReadIo resync:
                ResyncReadDone(resync, succeeded, data);
                break;
            default:
                Invariant.Assert(false, $"I/O {token} is a read");
                break;
        }
    }

    private void ResyncReadDone(ResyncReadIo read, bool succeeded, ReadOnlyMemory<byte> data)
    {
        if (!IsCurrent(read.Peer, read.Connection))
        {
            return; // the connection it was for is gone
        }
        var request = read.Request;
        io.Send(read.Peer, succeeded
            ? Frame((ushort)read.Volume, new RsDataReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId), data.Span)
            : Frame((ushort)read.Volume, new NegRsDReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId)));
    }

    private static bool IsResync(MessageType type) => type is MessageType.BitmapChunk or MessageType.SyncUuid
        or MessageType.RsDataRequest or MessageType.RsDataReply or MessageType.RsWriteAck or MessageType.NegRsDReply;

    /// <summary>After the handshake: start the bitmap exchange for every volume that needs a resync.</summary>
    private void BeginSync(int peer, VolumeDecision decision)
    {
        var volume = volumes[decision.Volume];
        int slot = volume.SlotOfPeer[peer];
        if (decision.Outcome.Comparison.SelfFixup is { } fixup)
        {
            SetIds(volume, fixup.ApplyTo(volume.Ids, slot));
        }
        var state = decision.Outcome.NextReplicationState;
        replication[(peer, volume.Number)] = state;
        if (volume.Disk == DiskState.Negotiating && state != ReplicationState.WFBitMapT)
        {
            // An attached disk that is not to be resynced here is what its metadata says (a
            // SyncTarget stays Negotiating, not written to, until the resync starts).
            var disk = ReplicaVolume.DiskFromFlags(volume.Flags);
            SetDisk(volume, state == ReplicationState.WFBitMapS && disk == DiskState.Consistent ? DiskState.UpToDate : disk);
        }
        if (state is not (ReplicationState.WFBitMapS or ReplicationState.WFBitMapT))
        {
            // Same data generation on both sides: a Consistent or Outdated copy is as good as the peer's.
            if (volume.Disk is DiskState.Consistent or DiskState.Outdated && decision.PeerDisk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated)
            {
                volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
                SetDisk(volume, DiskState.UpToDate);
                links[peer].SetPeerDisk(volume.Number, DiskState.UpToDate);
            }
            return;
        }
        StartSync(peer, volume, state, decision.Outcome.FullSync, decision.PeerUuids);
    }

    /// <summary>The bitmap exchange that starts every resync (WFBitMapS/T); a full sync first sets every bit.</summary>
    private void StartSync(int peer, ReplicaVolume volume, ReplicationState state, bool fullSync, UuidSet peerUuids)
    {
        int slot = volume.SlotOfPeer[peer];
        abortedSyncs.Remove((peer, volume.Number));
        SetReplication(peer, volume.Number, state);
        if (fullSync)
        {
            volume.Bitmaps.SetAll(slot);
        }
        var incoming = new QuickSyncBitmap(volume.UsableSizeBytes);
        syncs[(peer, volume.Number)] = new SyncState(state == ReplicationState.WFBitMapS, peerUuids, new BitmapReceiver(incoming), incoming);
        var sender = new BitmapSender(volume.Bitmaps.Bitmap(slot));
        while (!sender.IsComplete)
        {
            var frame = new byte[sender.MaxFrameBytes];
            int length = sender.WriteNextFrame(frame, (ushort)volume.Number);
            io.Send(peer, frame[..length]);
        }
        io.Log($"{Subject(peer)}/{volume.Number}: {(fullSync ? "full" : "bitmap")} resync, {volume.OutOfSyncBytes(peer) / 1024} KiB to sync");
    }

    private void ReceiveResync(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!volumes.TryGetValue(header.Volume, out var volume) || !syncs.TryGetValue((peer, header.Volume), out var sync))
        {
            if (abortedSyncs.Contains((peer, header.Volume)))
            {
                return; // sent before the peer learned that a disk went away
            }
            ProtocolError(peer, $"{header.Type} for volume {header.Volume}, which is not resyncing");
            return;
        }
        string? error = header.Type switch
        {
            MessageType.BitmapChunk => OnBitmapChunk(peer, volume, sync, payload),
            MessageType.SyncUuid => FramePayload.TryRead(payload, out SyncUuidMessage m, out var e) ? OnSyncUuid(peer, volume, sync, m.Uuid) : e,
            MessageType.RsDataRequest => FramePayload.TryRead(payload, out RsDataRequestMessage m, out var e) ? OnResyncRequest(peer, volume, sync, m) : e,
            MessageType.RsDataReply => OnResyncReply(peer, volume, sync, payload),
            MessageType.NegRsDReply => FramePayload.TryRead(payload, out NegRsDReplyMessage m, out var e) ? OnResyncFailed(peer, volume, sync, m.RequestId) : e,
            MessageType.RsWriteAck => FramePayload.TryRead(payload, out RsWriteAckMessage m, out var e) ? OnResyncWritten(peer, volume, sync, m) : e,
            _ => $"{header.Type} is not a resync message",
        };
        if (error is not null)
        {
            ProtocolError(peer, error);
        }
    }

    private string? OnBitmapChunk(int peer, ReplicaVolume volume, SyncState sync, in ReadOnlySequence<byte> payload)
    {
        if (sync.Receiving is null)
        {
            return "a bitmap chunk after the bitmap was complete";
        }
        if (!sync.Receiving.TryApply(payload, out string? error))
        {
            return error;
        }
        if (!sync.Receiving.IsComplete)
        {
            return null;
        }
        // Merge: every block either side changed while apart gets synced (DRBD ORs the bitmaps).
        int slot = volume.SlotOfPeer[peer];
        for (long bit = sync.Incoming!.FindNextSet(0); bit >= 0; )
        {
            long clear = sync.Incoming.FindNextClear(bit);
            long end = clear < 0 ? sync.Incoming.BitCount : clear;
            volume.Bitmaps.SetBits(slot, bit, end - bit);
            bit = end >= sync.Incoming.BitCount ? -1 : sync.Incoming.FindNextSet(end);
        }
        sync.Receiving = null;
        sync.Incoming = null;
        if (sync.Source)
        {
            var (uuids, syncUuid) = ResyncUuids.GenAndSendSyncUuid(UuidSet.FromGenerationIds(volume.Ids, slot), random.NextUInt64());
            SetIds(volume, uuids.ApplyTo(volume.Ids, slot));
            io.Send(peer, Frame((ushort)volume.Number, new SyncUuidMessage(syncUuid)));
            SetReplication(peer, volume.Number, ReplicationState.SyncSource);
            links[peer].SetPeerDisk(volume.Number, DiskState.Inconsistent);
            FinishSourceIfDone(peer, volume, sync);
        }
        else
        {
            SetReplication(peer, volume.Number, ReplicationState.WFSyncUUID);
        }
        return null;
    }

    private string? OnSyncUuid(int peer, ReplicaVolume volume, SyncState sync, ulong syncUuid)
    {
        if (sync.Source || ReplicationOf(peer, volume.Number) != ReplicationState.WFSyncUUID)
        {
            return "a SyncUuid out of place";
        }
        int slot = volume.SlotOfPeer[peer];
        // Not Consistent from the first resync write on, and durably so before it lands.
        volume.Flags &= ~MetadataFlags.Consistent;
        SetIds(volume, ResyncUuids.ReceiveSyncUuid(UuidSet.FromGenerationIds(volume.Ids, slot), syncUuid, Role == Role.Primary).ApplyTo(volume.Ids, slot));
        SetDisk(volume, DiskState.Inconsistent);
        SetReplication(peer, volume.Number, ReplicationState.SyncTarget);
        sync.Planner = new ResyncPlanner(volume.Bitmaps, slot);
        foreach (var client in pendingIo.Values.OfType<ClientIo>().Where(c => c.Volume == volume.Number && c.LengthBytes > 0))
        {
            // A Primary's own writes already on their way to this disk: no resync reply may land after them.
            client.Admissions.Add((sync.Planner, sync.Planner.ApplicationWriteArrived(client.OffsetBytes, client.LengthBytes).Token));
        }
        sync.Controller = new ResyncRateController(volume.ResyncRate);
        sync.LastTurnMs = -1; // the first turn comes with the next tick
        PumpResync(peer, volume, sync);
        return null;
    }

    /// <summary>Source: serve a request, after any local client write to the same blocks has landed.</summary>
    private string? OnResyncRequest(int peer, ReplicaVolume volume, SyncState sync, RsDataRequestMessage request)
    {
        if (!sync.Source || request.OffsetBytes + request.LengthBytes > (ulong)volume.UsableSizeBytes)
        {
            return $"RsDataRequest {request.OffsetBytes}+{request.LengthBytes} out of place or range";
        }
        StartServedRead(new ResyncReadIo(peer, receivers[peer], volume.Number, request));
        return null;
    }

    private string? OnResyncReply(int peer, ReplicaVolume volume, SyncState sync, in ReadOnlySequence<byte> payload)
    {
        if (!RsDataReplyMessage.TryRead(payload, out var reply, out var data, out string? error))
        {
            return error;
        }
        var planner = sync.Planner;
        if (planner is null || !planner.TryGetRequest((long)reply.RequestId, out var request)
            || request.OffsetBytes != (long)reply.OffsetBytes || request.LengthBytes != reply.LengthBytes)
        {
            return $"an RsDataReply for request {reply.RequestId}, which was not asked for";
        }
        if (planner.BeginReply(request.Id) == ReplyDisposition.Discard)
        {
            PumpResync(peer, volume, sync);
            return null;
        }
        long token = NewToken(new ResyncWriteIo(peer, sync, volume.Number, reply));
        if (reply.ExpectsData)
        {
            io.WriteLocal(volume.Number, (long)reply.OffsetBytes, data.ToArray(), fua: false, token);
        }
        else
        {
            io.ZeroLocal(volume.Number, (long)reply.OffsetBytes, reply.LengthBytes, trim: false, token);
        }
        return null;
    }

    private string? OnResyncFailed(int peer, ReplicaVolume volume, SyncState sync, ulong requestId)
    {
        if (sync.Planner is null || !sync.Planner.TryGetRequest((long)requestId, out _))
        {
            return $"a NegRsDReply for request {requestId}, which was not asked for";
        }
        io.Log($"{Subject(peer)}/{volume.Number}: the sync source could not read a block; it stays out of sync");
        sync.Planner.FailRequest((long)requestId);
        PumpResync(peer, volume, sync);
        return null;
    }

    private string? OnResyncWritten(int peer, ReplicaVolume volume, SyncState sync, RsWriteAckMessage ack)
    {
        if (!sync.Source)
        {
            return "an RsWriteAck on the sync target";
        }
        volume.Bitmaps.MarkInSync(volume.SlotOfPeer[peer], (long)ack.OffsetBytes, ack.LengthBytes);
        FinishSourceIfDone(peer, volume, sync);
        return null;
    }

    /// <summary>Target: a resync write landed — clear it, tell the source, ask for more.</summary>
    private void ResyncWriteDone(ResyncWriteIo write, bool succeeded)
    {
        var volume = volumes[write.Volume];
        var planner = write.Sync.Planner!;
        bool live = syncs.TryGetValue((write.Peer, write.Volume), out var current) && ReferenceEquals(current, write.Sync);
        if (!succeeded)
        {
            planner.FailRequest((long)write.Reply.RequestId);
        }
        else
        {
            planner.CompleteReply((long)write.Reply.RequestId);
            write.Sync.CompletedBytes += write.Reply.LengthBytes;
            if (live)
            {
                io.Send(write.Peer, Frame((ushort)write.Volume, new RsWriteAckMessage(write.Reply.OffsetBytes, write.Reply.LengthBytes, write.Reply.RequestId)));
            }
        }
        if (live)
        {
            PumpResync(write.Peer, volume, write.Sync);
        }
    }

    /// <summary>
    /// Every tick, each resync this node pulls asks its rate controller (resync-rate, or the dynamic
    /// c-plan-ahead controller) how much it may request now, within the window.
    /// </summary>
    private void ResyncTurns(long nowMs)
    {
        foreach (var ((peer, number), sync) in syncs.Where(s => s.Value.Planner is not null && !s.Value.PausedHere && !s.Value.PausedByPeer).ToList())
        {
            var planner = sync.Planner!;
            if (sync.LastTurnMs < 0)
            {
                sync.LastTurnMs = nowMs - ResyncRateController.StepMs;
            }
            long elapsedMs = nowMs - sync.LastTurnMs;
            if (elapsedMs < ResyncRateController.StepMs)
            {
                continue;
            }
            sync.LastTurnMs = nowMs;
            bool applicationIo = activeClientRanges.Count > 0 || (receivers.TryGetValue(peer, out var receiver) && receiver.ActiveWrites > 0);
            long budget = sync.Controller!.NextTurn(elapsedMs, sync.CompletedBytes, planner.InFlightBytes, applicationIo);
            sync.CompletedBytes = 0;
            PumpResync(peer, volumes[number], sync, Math.Min(budget, Math.Max(0, ResyncWindowBytes - planner.InFlightBytes)));
        }
    }

    /// <summary>Requests up to <paramref name="budgetBytes"/> more, and finishes the resync when nothing is left.</summary>
    private void PumpResync(int peer, ReplicaVolume volume, SyncState sync, long budgetBytes = 0)
    {
        var planner = sync.Planner!;
        foreach (var request in planner.NextRequests(budgetBytes))
        {
            io.Send(peer, Frame((ushort)volume.Number, new RsDataRequestMessage((ulong)request.OffsetBytes, (uint)request.LengthBytes, (ulong)request.Id)));
        }
        if (!planner.IsFinished)
        {
            return;
        }
        syncs.Remove((peer, volume.Number));
        if (planner.Progress(0).FailedBits > 0)
        {
            io.Log($"{Subject(peer)}/{volume.Number}: resync done, but {planner.Progress(0).FailedBits} blocks could not be read: the disk stays Inconsistent");
            SetReplication(peer, volume.Number, ReplicationState.Established);
            return;
        }
        int slot = volume.SlotOfPeer[peer];
        volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
        SetIds(volume, ResyncUuids.ResyncFinishedTarget(UuidSet.FromGenerationIds(volume.Ids, slot), sync.PeerUuids, Role == Role.Primary).ApplyTo(volume.Ids, slot));
        SetDisk(volume, DiskState.UpToDate);
        SetReplication(peer, volume.Number, ReplicationState.Established);
        links[peer].SetPeerDisk(volume.Number, DiskState.UpToDate); // the source was UpToDate throughout
        io.Log($"{Subject(peer)}/{volume.Number}: Resync done; disk is UpToDate");
    }

    private void FinishSourceIfDone(int peer, ReplicaVolume volume, SyncState sync)
    {
        if (ReplicationOf(peer, volume.Number) is not (ReplicationState.SyncSource or ReplicationState.PausedSyncS) || volume.OutOfSyncBytes(peer) > 0)
        {
            return;
        }
        syncs.Remove((peer, volume.Number));
        int slot = volume.SlotOfPeer[peer];
        SetIds(volume, ResyncUuids.ResyncFinishedSource(UuidSet.FromGenerationIds(volume.Ids, slot)).ApplyTo(volume.Ids, slot));
        SetReplication(peer, volume.Number, ReplicationState.Established);
        links[peer].SetPeerDisk(volume.Number, DiskState.UpToDate);
        io.Log($"{Subject(peer)}/{volume.Number}: Resync done (peer is UpToDate)");
    }

    private void SetIds(ReplicaVolume volume, GenerationIds ids)
    {
        volume.Ids = ids;
        io.PersistVolume(volume.Number);
    }

    /// <summary>A disk state the replica decided (resync start and end): persisted, then told to the peers.</summary>
    private void SetDisk(ReplicaVolume volume, DiskState disk)
    {
        if (volume.Disk != disk)
        {
            volume.Disk = disk; // the host logs the transition when it persists it
            io.PersistVolume(volume.Number);
            AnnounceState();
        }
    }

    private void SetReplication(int peer, int volume, ReplicationState state)
    {
        var before = ReplicationOf(peer, volume);
        if (before != state)
        {
            io.Log($"{Subject(peer)}/{volume}: repl( {before} -> {state} )");
            replication[(peer, volume)] = state;
        }
    }

    private string Subject(int peer) => $"{links[peer].Settings.ResourceName} {links[peer].Settings.PeerNodeName}";

    /// <summary>One peer-volume resync in progress (either side).</summary>
    private sealed class SyncState(bool source, UuidSet peerUuids, BitmapReceiver receiving, QuickSyncBitmap incoming)
    {
        public bool Source { get; } = source;
        public UuidSet PeerUuids { get; } = peerUuids;
        public BitmapReceiver? Receiving { get; set; } = receiving;
        public QuickSyncBitmap? Incoming { get; set; } = incoming;
        public ResyncPlanner? Planner { get; set; }
        public ResyncRateController? Controller { get; set; }
        public long LastTurnMs { get; set; }
        /// <summary>pause-sync here, or by the peer: no requests go out until both resume.</summary>
        public bool PausedHere { get; set; }
        public bool PausedByPeer { get; set; }
        /// <summary>Resync bytes written since the controller's last turn.</summary>
        public long CompletedBytes { get; set; }
    }

    private sealed record ResyncReadIo(int Peer, PeerWriteReceiver Connection, int Volume, RsDataRequestMessage Request)
        : ServedReadIo(Peer, Connection, Volume, (long)Request.OffsetBytes, (int)Request.LengthBytes);

    private sealed record ResyncWriteIo(int Peer, SyncState Sync, int Volume, RsDataReplyMessage Reply) : PendingIo;
}
