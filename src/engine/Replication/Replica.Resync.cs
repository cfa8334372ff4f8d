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
    /// <summary>
    /// Resync requests the target keeps in flight, in bytes: enough to cover a round trip and the
    /// source's read at local-disk speed (DRBD bounds it by max-buffers, 8000 pages in DRBD 9).
    /// </summary>
    public const long ResyncWindowBytes = 16L << 20;

    private readonly Dictionary<(int Peer, int Volume), SyncState> syncs = [];

    /// <summary>Resync progress towards or from a peer, or null when none runs.</summary>
    public ResyncProgress? ResyncProgressOf(int peerNodeId, int volume, long nowMs) =>
        syncs.TryGetValue((peerNodeId, volume), out var sync) && sync.Planner is { } planner ? planner.Progress(nowMs) : null;

    /// <summary>
    /// A local read started through <see cref="IReplicaIo.ReadLocal"/> finished: a client's, a peer's
    /// remote read, a resync's (either side, csums-alg included) or an online verify's.
    /// </summary>
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
            case VerifyReadIo verifyRead:
                VerifyReadDone(verifyRead, succeeded, data.Span);
                break;
            case CsumReadIo csumRead:
                CsumReadDone(csumRead, succeeded, data.Span);
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
        if (succeeded && read.TargetDigest is { } theirs && Digest.Compute(links[read.Peer].Settings.Protocol.CsumsAlg, data.Span) == theirs)
        {
            // csums-alg: the target already holds these bytes. It clears the bits and acks as after a write.
            if (syncs.TryGetValue((read.Peer, read.Volume), out var sync))
            {
                sync.SameCsumBits += request.LengthBytes / MetadataLayout.BytesPerBit;
            }
            io.Send(read.Peer, Frame((ushort)read.Volume, new RsIsInSyncMessage(request.OffsetBytes, request.LengthBytes, request.RequestId)));
            return;
        }
        if (!succeeded)
        {
            io.Send(read.Peer, Frame((ushort)read.Volume, new NegRsDReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId)));
            return;
        }
        var message = new RsDataReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId, IntegrityDigest: IntegrityDigestFor(read.Peer, data.Span));
        using var reply = ResyncReplyFrame(read.Peer, (ushort)read.Volume, message, data.Span);
        reply.SendTo(io, read.Peer, data.Span);
        CountSent(read.Peer, read.Volume, request.LengthBytes);
    }

    private static bool IsResync(MessageType type) => type is MessageType.BitmapChunk or MessageType.SyncUuid
        or MessageType.RsDataRequest or MessageType.RsDataReply or MessageType.RsWriteAck or MessageType.NegRsDReply
        or MessageType.CsumRsRequest or MessageType.RsIsInSync;

    /// <summary>
    /// After the handshake: start the bitmap exchange for every volume that needs a resync. When the
    /// device <paramref name="grew"/> and no resync was due, the new area is synced on its own.
    /// </summary>
    private void BeginSync(int peer, VolumeDecision decision, bool grew)
    {
        var volume = volumes[decision.Volume];
        if (WithoutData(decision.LocalDisk) && !WithoutData(volume.Disk) && volume.Disk != DiskState.Negotiating)
        {
            // The disk was attached after this node's state went out (Diskless), before the handshake's
            // decision: the peer takes us for Diskless and neither side compared the disk's UUIDs. Do
            // what an attach on the established connection does (DRBD's attach while connected).
            replication[(peer, volume.Number)] = ReplicationState.Established;
            NegotiateAttachedDisk(volume, [peer]);
            return;
        }
        if (WithoutData(volume.Disk))
        {
            // The disk failed after this node's state went out, before the handshake's decision:
            // DRBD runs no sync handshake without a disk, and a Diskless node is never SyncSource.
            // The peer hears our disk state now (the change happened before the connection counted
            // as established, so it was not sent): it stops its side and records what we write.
            replication[(peer, volume.Number)] = ReplicationState.Established;
            abortedSyncs.Add((peer, volume.Number));
            if (decision.Outcome.NextReplicationState != ReplicationState.Established)
            {
                io.Log($"{Subject(peer)}/{volume.Number}: no resync: the local disk is {volume.Disk}");
            }
            links[peer].AnnounceState();
            Drain(peer);
            return;
        }
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
            // SyncTarget stays Negotiating, not written to, until the resync starts) — but a
            // Primary's disk that does not hold the generation it serves is at best Outdated, as
            // after an attach while disconnected: it is the SyncTarget of that data later, not a
            // Primary's data that rr-conflict would keep from being overwritten.
            var disk = ReplicaVolume.DiskFromFlags(volume.Flags);
            if (ServesOtherData(volume, volume.Ids.Current) && disk > DiskState.Outdated)
            {
                disk = DiskState.Outdated;
            }
            SetDisk(volume, state == ReplicationState.WFBitMapS && disk == DiskState.Consistent ? DiskState.UpToDate : disk);
        }
        if (state is not (ReplicationState.WFBitMapS or ReplicationState.WFBitMapT))
        {
            if (UpgradesWithoutResync(volume.Disk, decision.PeerDisk))
            {
                UpgradeToUpToDate(peer, volume);
                links[peer].SetPeerDisk(volume.Number, DiskState.UpToDate);
            }
            if (grew)
            {
                StartGrowSync(peer, volume);
            }
            else if (volume.OutOfSyncBytes(peer) > 0)
            {
                // E.g. blocks an online verify found: only a resync that starts for another reason copies them.
                io.Log($"{Subject(peer)}/{volume.Number}: No resync, but {volume.OutOfSyncBytes(peer) / MetadataLayout.BytesPerBit} bits in bitmap!");
            }
            ClearCrashedPrimary(volume);
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
        if (state == ReplicationState.WFBitMapS && volume.Disk is DiskState.Consistent or DiskState.Outdated)
        {
            // The handshake found this copy the newest: it is the UpToDate one. DRBD does the same for
            // an Outdated one (sanitize_state: a SyncSource is UpToDate, "implicitly upgraded disk").
            volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
            SetDisk(volume, DiskState.UpToDate);
        }
        if (fullSync)
        {
            volume.Bitmaps.SetBits(slot, 0, volume.AgreedBits);
        }
        // Both sides exchange exactly the agreed size: a bigger disk's bits past it are never set.
        var incoming = new QuickSyncBitmap(volume.AgreedSizeBytes);
        syncs[(peer, volume.Number)] = new SyncState(state == ReplicationState.WFBitMapS, peerUuids, new BitmapReceiver(incoming), incoming)
        {
            StartedMs = clockMs,
            TargetWentInconsistent = links[peer].PeerDisks.GetValueOrDefault(volume.Number) == DiskState.Inconsistent,
        };
        if (state == ReplicationState.WFBitMapS)
        {
            // The peer's copy is to be overwritten: no longer UpToDate (see PeerLink.PeerDiskWhile).
            links[peer].SetPeerDisk(volume.Number, PeerLink.PeerDiskWhile(state, links[peer].PeerDisks.GetValueOrDefault(volume.Number)));
        }
        var sender = new BitmapSender(volume.Bitmaps.Bitmap(slot), volume.AgreedBits);
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
            MessageType.RsDataRequest => FramePayload.TryRead(payload, out RsDataRequestMessage m, out var e) ? OnResyncRequest(peer, volume, sync, m, null) : e,
            MessageType.CsumRsRequest => FramePayload.TryRead(payload, out CsumRsRequestMessage m, out var e) ? OnCsumResyncRequest(peer, volume, sync, m) : e,
            MessageType.RsIsInSync => FramePayload.TryRead(payload, out RsIsInSyncMessage m, out var e) ? OnResyncInSync(peer, volume, sync, m) : e,
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
            sync.TotalBits = volume.OutOfSyncBytes(peer) / MetadataLayout.BytesPerBit;
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
        sync.IdsBeforeSyncUuid = volume.Ids;
        SetIds(volume, ResyncUuids.ReceiveSyncUuid(UuidSet.FromGenerationIds(volume.Ids, slot), syncUuid, Role == Role.Primary).ApplyTo(volume.Ids, slot));
        sync.IdsWithSyncUuid = volume.Ids;
        SetDisk(volume, DiskState.Inconsistent);
        SetReplication(peer, volume.Number, ReplicationState.SyncTarget);
        // With csums-alg each request is one block, so only blocks whose digests differ are transferred.
        sync.UsesCsums = UsesCsums(peer, volume);
        if (sync.UsesCsums && links[peer].Settings.CsumsAfterCrashOnly)
        {
            io.Log($"{Subject(peer)}/{volume.Number}: checksum-based resync after a primary crash (csums-after-crash-only)");
        }
        sync.Planner = sync.UsesCsums ? new ResyncPlanner(volume.Bitmaps, slot, CsumsRequestBytes) : new ResyncPlanner(volume.Bitmaps, slot);
        foreach (var client in pendingIo.Values.OfType<ClientIo>().Where(c => c.Volume == volume.Number && c.LengthBytes > 0))
        {
            // A Primary's own writes already on their way to this disk: no resync reply may land after them.
            client.Admissions.Add((sync.Planner, sync.Planner.ApplicationWriteArrived(client.OffsetBytes, client.LengthBytes).Token));
        }
        sync.Controller = new ResyncRateController(volume.ResyncRate);
        // The first turn now, not with the next tick: a short resync would otherwise wait up to a tick.
        sync.LastTurnMs = clockMs;
        sync.BudgetLeftBytes = sync.Controller.NextTurn(ResyncRateController.StepMs, 0, 0);
        if (!HoldForBeforeResyncTarget(peer, volume.Number, sync))
        {
            PumpResync(peer, volume, sync);
        }
        return null;
    }

    /// <summary>
    /// The source's disk went away during a resync this node is the target of. The source wrote its
    /// sync UUID (P_SYNC_UUID) to that disk just before; if the disk failed under that very write,
    /// the source comes back with its previous bitmap UUID, which no rule relates to the sync UUID
    /// taken here as current: the handshake would find unrelated data. So the target goes back to
    /// the UUIDs it had (its data is Inconsistent either way; nothing was adopted from the source
    /// yet) where those relate to the source's either way: when the source had no bitmap UUID (a
    /// full sync: its history and current did not change), or when this node's current was that
    /// bitmap UUID (rule 50/70 if the sync UUID was lost, the lost-P_SYNC_UUID fix-ups 51/71 if it
    /// was kept); the resync then resumes from the bitmap. DRBD 9 (protocol 110) leaves the target's
    /// UUIDs alone until the resync finishes for the same reason. After a split-brain resolution
    /// (rule 90: equal bitmap UUIDs) the target goes back too: if the source lost its sync UUID the
    /// two meet again by rule 90, if it kept it (the old bitmap UUID now in its history) by rule 100;
    /// either way a split brain again, which the operator resolved once and can again, instead of
    /// unrelated data for good.
    /// </summary>
    private void ForgetSyncUuid(int peer, ReplicaVolume volume)
    {
        if (syncs.TryGetValue((peer, volume.Number), out var sync) && !sync.Source
            && sync.IdsBeforeSyncUuid is { } before && sync.IdsWithSyncUuid is { } adopted && volume.Ids == adopted
            && (sync.PeerUuids.Bitmap is 0 or GenerationIds.JustCreated
                || GenerationIds.SameGeneration(before.Current, sync.PeerUuids.Bitmap)
                || GenerationIds.SameGeneration(before.Bitmap[volume.SlotOfPeer[peer]], sync.PeerUuids.Bitmap)))
        {
            SetIds(volume, before);
            io.Log($"{Subject(peer)}/{volume.Number}: the sync source lost its disk: back to current UUID {before.Current:X16}");
        }
    }

    /// <summary>
    /// Source: serve a request, after any local client write to the same blocks has landed. With
    /// <paramref name="targetDigest"/> (csums-alg) the reply is RsIsInSync when our digest matches.
    /// </summary>
    private string? OnResyncRequest(int peer, ReplicaVolume volume, SyncState sync, RsDataRequestMessage request, Digest? targetDigest)
    {
        if (!sync.Source || request.OffsetBytes + request.LengthBytes > (ulong)volume.AgreedSizeBytes)
        {
            return $"{(targetDigest is null ? "RsDataRequest" : "CsumRsRequest")} {request.OffsetBytes}+{request.LengthBytes} out of place or range";
        }
        StartServedRead(new ResyncReadIo(peer, receivers[peer], volume.Number, request, targetDigest));
        return null;
    }

    private string? OnCsumResyncRequest(int peer, ReplicaVolume volume, SyncState sync, CsumRsRequestMessage request)
    {
        var algorithm = links[peer].Settings.Protocol.CsumsAlg;
        if (algorithm == DigestAlgorithm.None || request.Digest.LengthBytes != DigestAlgorithms.LengthBytes(algorithm))
        {
            return $"a CsumRsRequest with a {request.Digest.LengthBytes}-byte digest for csums-alg {DigestAlgorithms.Name(algorithm)}";
        }
        sync.UsesCsums = true; // the target decides (csums-after-crash-only); its summary line is ours too
        return OnResyncRequest(peer, volume, sync, new RsDataRequestMessage(request.OffsetBytes, request.LengthBytes, request.RequestId), request.Digest);
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
        CountReceived(peer, volume.Number, reply.LengthBytes);
        PooledBlock? block = null;
        if (reply.ExpectsData && (block = ReceivedBlock(peer, data, (reply.Flags & RsDataFlags.Compressed) != 0, reply.LengthBytes, out error)) is null)
        {
            return error;
        }
        if (block is not null && IntegrityFailure(peer, MessageType.RsDataReply, reply.IntegrityDigest, block.Memory.Span, reply.OffsetBytes, reply.LengthBytes) is { } damaged)
        {
            block.Dispose();
            return damaged; // not written: the bit stays set and the reconnect resyncs the range
        }
        if (planner.BeginReply(request.Id) == ReplyDisposition.Discard)
        {
            block?.Dispose();
            PumpResync(peer, volume, sync);
            return null;
        }
        long token = NewToken(new ResyncWriteIo(peer, sync, volume.Number, reply, block));
        if (block is not null)
        {
            io.WriteLocal(volume.Number, (long)reply.OffsetBytes, block.Memory, fua: false, token);
        }
        else
        {
            io.ZeroLocal(volume.Number, (long)reply.OffsetBytes, reply.LengthBytes, trim: false, token);
        }
        return null;
    }

    /// <summary>Target (csums-alg): the source holds the same bytes — the bits clear without a write; the source learns it by RsWriteAck.</summary>
    private string? OnResyncInSync(int peer, ReplicaVolume volume, SyncState sync, RsIsInSyncMessage inSync)
    {
        var planner = sync.Planner;
        if (planner is null || !sync.UsesCsums || !planner.TryGetRequest((long)inSync.RequestId, out var request)
            || request.OffsetBytes != (long)inSync.OffsetBytes || request.LengthBytes != inSync.LengthBytes)
        {
            return $"an RsIsInSync for request {inSync.RequestId}, which was not asked for";
        }
        if (planner.BeginReply(request.Id) == ReplyDisposition.Write)
        {
            // Not overtaken by an application write: our copy was what the digest said when we read it.
            planner.CompleteReply(request.Id);
            sync.CompletedBytes += inSync.LengthBytes;
            sync.SameCsumBits += inSync.LengthBytes / MetadataLayout.BytesPerBit;
            io.Send(peer, Frame((ushort)volume.Number, new RsWriteAckMessage(inSync.OffsetBytes, inSync.LengthBytes, inSync.RequestId)));
        }
        PumpResync(peer, volume, sync);
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
        if (ack.OffsetBytes + ack.LengthBytes > (ulong)volume.AgreedSizeBytes)
        {
            return $"an RsWriteAck beyond the device ({ack.OffsetBytes}+{ack.LengthBytes} > {volume.AgreedSizeBytes})";
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
                var ack = new RsWriteAckMessage(write.Reply.OffsetBytes, write.Reply.LengthBytes, write.Reply.RequestId);
                if (links[write.Peer].Settings.DiskFlushes)
                {
                    write.Sync.UnflushedAcks.Add(ack);
                    FlushResyncWrites(write.Peer, write.Volume, write.Sync);
                }
                else
                {
                    // disk-flushes no: the disk's cache survives power loss (the administrator says so,
                    // as for the barriers, which then drain without a flush): written is durable.
                    io.Send(write.Peer, Frame((ushort)write.Volume, ack));
                }
            }
        }
        if (live)
        {
            PumpResync(write.Peer, volume, write.Sync);
        }
    }

    /// <summary>
    /// Target: RsWriteAck tells the source a block is in sync, and it clears its bit for good — so the
    /// block must be durable here first. A crash of this node would otherwise take resync writes
    /// still in the disk's cache while neither bitmap marks them any more (the bits the bitmap
    /// exchange set were cleared again before the host wrote them out). Completed writes are
    /// acknowledged in batches, after a flush that covers them (one flush in flight at a time) —
    /// unless `disk-flushes no` says the disk's cache is non-volatile: then each is acknowledged
    /// once written, as DRBD does.
    /// </summary>
    private void FlushResyncWrites(int peer, int volumeNumber, SyncState sync)
    {
        if (sync.FlushingAcks is not null || sync.UnflushedAcks.Count == 0)
        {
            return;
        }
        sync.FlushingAcks = sync.UnflushedAcks;
        sync.UnflushedAcks = [];
        io.FlushLocal(NewToken(new ResyncFlushIo(peer, sync, volumeNumber)));
    }

    /// <summary>Target: the flush after resync writes finished: acknowledge what it covers (a failed one acknowledges nothing).</summary>
    private void ResyncFlushDone(ResyncFlushIo flush, bool succeeded)
    {
        var acks = flush.Sync.FlushingAcks ?? [];
        flush.Sync.FlushingAcks = null;
        if (!syncs.TryGetValue((flush.Peer, flush.Volume), out var current) || !ReferenceEquals(current, flush.Sync) || !succeeded)
        {
            return;
        }
        foreach (var ack in acks)
        {
            io.Send(flush.Peer, Frame((ushort)flush.Volume, ack));
        }
        FlushResyncWrites(flush.Peer, flush.Volume, flush.Sync);
        PumpResync(flush.Peer, volumes[flush.Volume], flush.Sync); // the last flush may finish the resync
    }

    /// <summary>
    /// Every tick, each resync this node pulls asks its rate controller (resync-rate, or the dynamic
    /// c-plan-ahead controller) how much it may request now, within the window.
    /// </summary>
    private void ResyncTurns(long nowMs)
    {
        foreach (var ((peer, number), sync) in syncs.Where(s => s.Value.Planner is not null && !s.Value.PausedHere && !s.Value.PausedByPeer && s.Value.HandlerToken == 0).ToList())
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
            sync.BudgetLeftBytes = budget;
            PumpResync(peer, volumes[number], sync);
        }
    }

    /// <summary>
    /// Requests what this turn's budget still allows within the window (so completions keep the
    /// pipeline full between turns), and finishes the resync when nothing is left.
    /// </summary>
    private void PumpResync(int peer, ReplicaVolume volume, SyncState sync)
    {
        var planner = sync.Planner!;
        bool held = sync.PausedHere || sync.PausedByPeer || sync.HandlerToken != 0;
        long budgetBytes = held ? 0 : Math.Min(sync.BudgetLeftBytes, Math.Max(0, ResyncWindowBytes - planner.InFlightBytes));
        bool csums = sync.UsesCsums;
        foreach (var request in planner.NextRequests(budgetBytes))
        {
            sync.BudgetLeftBytes -= request.LengthBytes;
            if (csums)
            {
                io.ReadLocal(volume.Number, request.OffsetBytes, (int)request.LengthBytes, NewToken(new CsumReadIo(peer, sync, volume.Number, request)));
            }
            else
            {
                io.Send(peer, Frame((ushort)volume.Number, new RsDataRequestMessage((ulong)request.OffsetBytes, (uint)request.LengthBytes, (ulong)request.Id)));
            }
        }
        if (!planner.IsFinished || sync.FlushingAcks is not null || sync.UnflushedAcks.Count > 0)
        {
            // Not done, or done but not yet durable: UpToDate is announced (and persisted) only once a
            // flush covers every resync write, or the source would clear its bits on our word alone.
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
        ClearCrashedPrimary(volume);
        ResyncCoveredMissedWrites(volume);
        io.Log($"{Subject(peer)}/{volume.Number}: {ResyncDoneSummary(sync, planner.Progress(0).TotalBits)}; disk is UpToDate");
        LogCsumsSummary(peer, volume, sync, planner.Progress(0).TotalBits);
        io.RunHandler("after-resync-target", peer, volume.Number, 0);
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
        ClearCrashedPrimary(volume);
        ResyncCoveredMissedWrites(volume);
        io.Log($"{Subject(peer)}/{volume.Number}: {ResyncDoneSummary(sync, sync.TotalBits)}; peer is UpToDate");
        LogCsumsSummary(peer, volume, sync, sync.TotalBits);
    }

    /// <summary>
    /// A State from the SyncTarget. Once it went Inconsistent for this resync, UpToDate means every
    /// block it requested was written. Bits still set here are then blocks the application rewrote
    /// during the resync under protocol A or B, which the target received as Data but never
    /// acknowledged (only protocol C acks writes): it has them. Clear them and finish.
    /// </summary>
    private void PeerDiskReported(int peer, int volumeNumber)
    {
        if (!volumes.TryGetValue(volumeNumber, out var volume) || !syncs.TryGetValue((peer, volumeNumber), out var sync) || !sync.Source)
        {
            return;
        }
        var peerDisk = links[peer].PeerDisks.GetValueOrDefault(volumeNumber);
        if (peerDisk == DiskState.Inconsistent)
        {
            sync.TargetWentInconsistent = true;
        }
        else if (peerDisk == DiskState.UpToDate && sync.TargetWentInconsistent && sync.Receiving is null)
        {
            volume.Bitmaps.ClearAll(volume.SlotOfPeer[peer]);
            FinishSourceIfDone(peer, volume, sync);
        }
    }

    /// <summary>The writes a crashed Primary may have had in flight are resynced (or needed none): the flag has served.</summary>
    private void ClearCrashedPrimary(ReplicaVolume volume)
    {
        if (volume.Flags.HasFlag(MetadataFlags.CrashedPrimary))
        {
            volume.Flags &= ~MetadataFlags.CrashedPrimary;
            io.PersistVolume(volume.Number);
        }
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

    /// <summary>DRBD's "Resync done (total N sec; paused N sec; N K/sec)", with milliseconds: short resyncs are common here.</summary>
    private string ResyncDoneSummary(SyncState sync, long totalBits)
    {
        sync.Paused(false, clockMs);
        long totalMs = Math.Max(0, clockMs - sync.StartedMs);
        long activeMs = Math.Max(1, totalMs - sync.PausedTotalMs);
        long kib = totalBits * (MetadataLayout.BytesPerBit / 1024);
        return FormattableString.Invariant($"Resync done (total {totalMs / 1000.0:0.000} sec; paused {sync.PausedTotalMs / 1000.0:0.000} sec; {kib * 1000 / activeMs} K/sec; {kib} KiB)");
    }

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
        /// <summary>Non-zero while before-resync-target runs: the target requests nothing until it returns.</summary>
        public long HandlerToken { get; set; }
        /// <summary>Target: RsWriteAcks of resync writes done but not yet flushed, and those the running flush covers.</summary>
        public List<RsWriteAckMessage> UnflushedAcks { get; set; } = [];
        public List<RsWriteAckMessage>? FlushingAcks { get; set; }
        /// <summary>Target: its UUIDs before it took the source's sync UUID as current, and with it.</summary>
        public GenerationIds? IdsBeforeSyncUuid { get; set; }
        public GenerationIds? IdsWithSyncUuid { get; set; }
        /// <summary>Source: the target reported Inconsistent for this resync (so a later UpToDate means it finished).</summary>
        public bool TargetWentInconsistent { get; set; }
        /// <summary>What the rate controller's last turn still allows to be requested.</summary>
        public long BudgetLeftBytes { get; set; }
        /// <summary>Resync bytes written since the controller's last turn.</summary>
        public long CompletedBytes { get; set; }
        /// <summary>Target: this resync compares checksums (csums-alg; decided at its start). Source: the target asked by checksum.</summary>
        public bool UsesCsums { get; set; }
        /// <summary>csums-alg: blocks found equal (not transferred), DRBD's rs_same_csum.</summary>
        public long SameCsumBits { get; set; }
        /// <summary>Source: blocks to sync when it became SyncSource (DRBD's rs_total).</summary>
        public long TotalBits { get; set; }
        /// <summary>When the bitmap exchange began (the "total" of DRBD's Resync done line counts from here).</summary>
        public long StartedMs { get; init; }
        /// <summary>Time spent paused (pause-sync on either side), for the Resync done line.</summary>
        public long PausedTotalMs { get; private set; }
        private long pausedSinceMs = -1;

        /// <summary>Notes a pause starting or ending at <paramref name="nowMs"/>.</summary>
        public void Paused(bool paused, long nowMs)
        {
            if (paused && pausedSinceMs < 0)
            {
                pausedSinceMs = nowMs;
            }
            else if (!paused && pausedSinceMs >= 0)
            {
                PausedTotalMs += nowMs - pausedSinceMs;
                pausedSinceMs = -1;
            }
        }
    }

    /// <summary>Source: a read to answer a request; <paramref name="TargetDigest"/> is the target's digest under csums-alg.</summary>
    private sealed record ResyncReadIo(int Peer, PeerWriteReceiver Connection, int Volume, RsDataRequestMessage Request, Digest? TargetDigest = null)
        : ServedReadIo(Peer, Connection, Volume, (long)Request.OffsetBytes, (int)Request.LengthBytes);

    private sealed record ResyncFlushIo(int Peer, SyncState Sync, int Volume) : PendingIo;

    private sealed record ResyncWriteIo(int Peer, SyncState Sync, int Volume, RsDataReplyMessage Reply, PooledBlock? Block = null) : PendingIo;
}
